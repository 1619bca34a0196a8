"""Word and character lists used by the quality operators (data only; nothing registers it).

The stop-word lists are short lists of very common function words, written for this project.
"""

from __future__ import annotations

STOP_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        """a about above after again against all am an and any are as at be because been before being
        below between both but by can could did do does doing down during each few for from further had
        has have having he her here hers herself him himself his how i if in into is it its itself just
        me more most my myself no nor not now of off on once only or other our ours ourselves out over
        own same she should so some such than that the their theirs them themselves then there these
        they this those through to too under until up very was we were what when where which while who
        whom why will with would you your yours yourself yourselves""".split()
    ),
    "de": frozenset(
        """aber alle allem allen aller alles als also am an andere anderen auch auf aus bei bin bis bist
        da damit dann das dass dein deine dem den denn der des dich die dies diese diesem diesen dieser
        dieses dir doch dort du durch ein eine einem einen einer eines er es etwas euch euer für gegen
        gewesen habe haben hat hatte hier hinter ich ihm ihn ihnen ihr ihre im in indem ins ist jede
        jedem jeden jeder jedes jetzt kann kein keine können man mein meine mich mir mit muss nach nicht
        nichts noch nun nur ob oder ohne sehr sein seine sich sie sind so soll sondern über um und uns
        unser unter viel vom von vor war waren was weil welche wenn werden wie wieder wir wird wo zu zum
        zur zwischen""".split()
    ),
    "fr": frozenset(
        """à afin ai aux avait avec avoir bien c ce cela ces cet cette comme d dans de des donc du elle
        elles en est et été était être eu fait il ils j je l la le les leur leurs lui m ma mais me même
        mes moi mon n ne nos notre nous on ont ou où par pas peut plus pour qu que qui s sa sans se ses
        si son sont sur t ta te tes toi ton tous tout très tu un une vos votre vous y""".split()
    ),
    "es": frozenset(
        """a al algo algunos ante antes como con contra cual cuando de del desde donde durante e el él
        ella ellas ellos en entre era es esa ese eso esta está están este esto estos fue fueron ha había
        han hasta hay la las le les lo los más me mi mientras muy nada ni no nos nosotros o otra otro
        para pero poco por porque que qué se sea ser si sí sin sobre son su sus también te tiene todo
        todos tu tus un una uno unos y ya yo""".split()
    ),
    "it": frozenset(
        """a ad al alla alle anche avere come con cui da dal dalla dei del della delle di e è ed gli ha
        hanno i il in io la le lei lo loro lui ma mi mio ne nei nel nella noi non o per più perché però
        quale quando quella quello questa questo se si sia sono su sua suo sul sulla tra tu tutti tutto
        un una uno vi""".split()
    ),
    "pt": frozenset(
        """a ao aos as até com como da das de dela dele do dos e é ela elas ele eles em entre era essa
        esse esta este eu foi for há isso isto já lhe mais mas me mesmo meu minha muito na não nas nem
        no nos nós o os ou para pela pelo por qual quando que se sem ser seu sua são também te tem um
        uma você""".split()
    ),
    "nl": frozenset(
        """aan al als bij dan dat de der deze die dit doch door dus een en er ge geen had heb hebben
        heeft hem het hier hij hoe hun ik in is ja je kan kon maar me met mij mijn na naar niet niets
        nog nu of om omdat ons ook op over te tegen toch tot u uit van veel voor want was wat we wel
        werd wie wij wordt zal ze zelf zich zij zijn zo zonder""".split()
    ),
}


# Chinese is written without spaces: its list holds single characters (function characters),
# matched one character at a time.
STOP_CHARS_ZH = frozenset(
    "的了是在和有我你他她它们这那个不也就都而及与着或被把从对为以之其所于吗呢吧啊一上中到说要会很还又给让得地但并等则即"
)


LANGUAGES = (*STOP_WORDS, "zh")


# The stop words of the Gopher quality rules (Rae et al. 2021, appendix A.1.1): a document must
# contain at least two of them.
GOPHER_STOP_WORDS = frozenset(["the", "be", "to", "of", "and", "that", "have", "with"])


# A small built-in list of common adult, profanity and spam terms (English), the default of
# flagged_words_evaluator. Pass `words` or `words_file` for a real block list.
DEFAULT_FLAGGED_WORDS = frozenset(
    """porn porno xxx sex sexy nude nudes naked fuck fucking shit bitch pussy dick cock cunt slut whore
    blowjob hentai milf escort camgirl viagra casino""".split()
)


# Characters stripped from both ends of a word before a stop-word or flagged-word lookup.
WORD_EDGE_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~¡¿«»“”„‘’‚‹›…—–·•"


# A line starting with one of these (after leading whitespace) is a bullet line.
BULLETS = "-*+•‣⁃◦∙·●○▪▫■□►▶▸➢➤✓✔"


# A line ending with one of these (before trailing whitespace) ends with terminal punctuation.
TERMINAL_PUNCTUATION = ".!?…\"”’'»。！？．｡؟۔।॥"


# Unicode's Sentence_Terminal characters (Unicode 16 PropList), as code point ranges: the set
# datatrove's FineWebQualityFilter takes as terminal punctuation (its TERMINAL_PUNCTUATION lists
# these, up to a few rare marks). No quotation marks and no "…": a line ending with '."' or "…"
# does not end with terminal punctuation, one ending with "..." does (it ends with ".").
_SENTENCE_TERMINAL_RANGES = (
    (0x21, 0x21), (0x2E, 0x2E), (0x3F, 0x3F), (0x589, 0x589), (0x61D, 0x61F), (0x6D4, 0x6D4),
    (0x700, 0x702), (0x7F9, 0x7F9), (0x837, 0x837), (0x839, 0x839), (0x83D, 0x83E),
    (0x964, 0x965), (0x104A, 0x104B), (0x1362, 0x1362), (0x1367, 0x1368), (0x166E, 0x166E),
    (0x1735, 0x1736), (0x17D4, 0x17D5), (0x1803, 0x1803), (0x1809, 0x1809), (0x1944, 0x1945),
    (0x1AA8, 0x1AAB), (0x1B4E, 0x1B4F), (0x1B5A, 0x1B5B), (0x1B5E, 0x1B5F), (0x1B7D, 0x1B7F),
    (0x1C3B, 0x1C3C), (0x1C7E, 0x1C7F), (0x2024, 0x2024), (0x203C, 0x203D), (0x2047, 0x2049),
    (0x2CF9, 0x2CFB), (0x2E2E, 0x2E2E), (0x2E3C, 0x2E3C), (0x2E53, 0x2E54), (0x2E60, 0x2E61),
    (0x3002, 0x3002), (0xA4FF, 0xA4FF), (0xA60E, 0xA60F), (0xA6F3, 0xA6F3), (0xA6F7, 0xA6F7),
    (0xA876, 0xA877), (0xA8CE, 0xA8CF), (0xA92F, 0xA92F), (0xA9C8, 0xA9C9), (0xAA5D, 0xAA5F),
    (0xAAF0, 0xAAF1), (0xABEB, 0xABEB), (0xFE12, 0xFE12), (0xFE15, 0xFE16), (0xFE52, 0xFE52),
    (0xFE56, 0xFE57), (0xFF01, 0xFF01), (0xFF0E, 0xFF0E), (0xFF1F, 0xFF1F), (0xFF61, 0xFF61),
    (0x10A56, 0x10A57), (0x10F55, 0x10F59), (0x10F86, 0x10F89), (0x11047, 0x11048),
    (0x110BE, 0x110C1), (0x11141, 0x11143), (0x111C5, 0x111C6), (0x111CD, 0x111CD),
    (0x111DE, 0x111DF), (0x11238, 0x11239), (0x1123B, 0x1123C), (0x112A9, 0x112A9),
    (0x113D4, 0x113D5), (0x1144B, 0x1144C), (0x115C2, 0x115C3), (0x115C9, 0x115D7),
    (0x11641, 0x11642), (0x1173C, 0x1173E), (0x11944, 0x11944), (0x11946, 0x11946),
    (0x11A42, 0x11A43), (0x11A9B, 0x11A9C), (0x11C41, 0x11C42), (0x11EF7, 0x11EF8),
    (0x11F43, 0x11F44), (0x16A6E, 0x16A6F), (0x16AF5, 0x16AF5), (0x16B37, 0x16B38),
    (0x16B44, 0x16B44), (0x16D6E, 0x16D6F), (0x16E98, 0x16E98), (0x1BC9F, 0x1BC9F),
    (0x1DA88, 0x1DA88),
)


SENTENCE_TERMINALS = "".join(chr(c) for low, high in _SENTENCE_TERMINAL_RANGES for c in range(low, high + 1))


# Sentence terminators for sentence counting, and what may close a sentence after them.
SENTENCE_END = ".!?…。！？．｡؟۔।॥"


SENTENCE_CLOSERS = "\"'”’»)]"


# C4 (Raffel et al. 2020; TFDS `c4_utils`): lines mentioning these are policy/cookie notices.
C4_POLICY_PHRASES = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)
