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


# Unicode's Sentence_Terminal characters (Unicode 16 PropList), as code points and ranges: the set
# datatrove's FineWebQualityFilter takes as terminal punctuation (its TERMINAL_PUNCTUATION lists
# these, up to a few rare marks). No quotation marks and no "…": a line ending with '."' or "…"
# does not end with terminal punctuation, one ending with "..." does (it ends with ".").
_SENTENCE_TERMINAL_RANGES = """
21 2E 3F 589 61D-61F 6D4 700-702 7F9 837 839 83D-83E 964-965 104A-104B 1362 1367-1368 166E
1735-1736 17D4-17D5 1803 1809 1944-1945 1AA8-1AAB 1B4E-1B4F 1B5A-1B5B 1B5E-1B5F 1B7D-1B7F
1C3B-1C3C 1C7E-1C7F 2024 203C-203D 2047-2049 2CF9-2CFB 2E2E 2E3C 2E53-2E54 2E60-2E61 3002
A4FF A60E-A60F A6F3 A6F7 A876-A877 A8CE-A8CF A92F A9C8-A9C9 AA5D-AA5F AAF0-AAF1 ABEB FE12
FE15-FE16 FE52 FE56-FE57 FF01 FF0E FF1F FF61 10A56-10A57 10F55-10F59 10F86-10F89
11047-11048 110BE-110C1 11141-11143 111C5-111C6 111CD 111DE-111DF 11238-11239 1123B-1123C
112A9 113D4-113D5 1144B-1144C 115C2-115C3 115C9-115D7 11641-11642 1173C-1173E 11944 11946
11A42-11A43 11A9B-11A9C 11C41-11C42 11EF7-11EF8 11F43-11F44 16A6E-16A6F 16AF5 16B37-16B38
16B44 16D6E-16D6F 16E98 1BC9F 1DA88
"""  # hexadecimal code points and ranges


SENTENCE_TERMINALS = "".join(
    chr(c)
    for item in _SENTENCE_TERMINAL_RANGES.split()
    for c in range(int(item.split("-")[0], 16), int(item.split("-")[-1], 16) + 1)
)


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
