"""A labelled set of (chunk, question, answer, quote) items for `qa_support_filter`, written for
this project: supported pairs whose quotes differ from the chunk in form only (whitespace, line
breaks, hyphenation, curly quotes, dashes, case, table and list marks, an ellipsis), and planted
unsupported ones (a changed number, name or word in the quote, a paraphrase, a quote from another
chunk, an answer that is not in the quote or not in the chunk at all, a wrong answer, an answer
the question gives away, an over-long answer, a too-short quote).

Each case: (chunk key, question, answer, quote, supported?, kind).
"""

from __future__ import annotations

CHUNKS = {
    "station": (
        "The Lake Orrin Field Station was founded in 1987 by the limnologist Dr. Maren Toft to monitor\n"
        "the water quality of the lake. It sits on the northern shore, 14 kilometres from the town of\n"
        "Kessel Ford, and hosts about 2,300 visitors each year. The station keeps a continuous record\n"
        "of water temperature, oxygen and clarity that now spans more than three decades of measure-\n"
        "ments."
    ),
    "boat": (
        "The research boat Heron II takes visitors along on sampling trips between April and October. "
        "Each trip lasts about two hours and carries at most 12 passengers.\n\n"
        "Month | Departures per week | First boat | Water temperature\n"
        "April | 2 | 10:00 | 6 °C\n"
        "June | 5 | 08:30 | 15 °C\n"
        "August | 6 | 08:00 | 19 °C\n"
        "October | 3 | 10:30 | 11 °C"
    ),
    "birds": (
        "The reed beds west of the pier shelter a breeding colony of great crested grebes. In 2019 the "
        "station counted 64 nesting pairs, the highest number since records began. Ospreys hunt over the "
        "open water from late April, and a pair has nested on the old radio mast since 2015."
    ),
    "ferry": (
        "The first ferry on the lake, a steam launch named \u201cOrrin Star\u201d, was built in 1911 by the "
        "boatyard of Edvin Hallqvist in Osby. The Marta Lind replaced the last steam ferry in 1964 and was "
        "converted to electric propulsion in 2018, which cut its fuel costs by about 60 percent."
    ),
    "toads": (
        "The toad patrol runs on rainy evenings in March and April, when the air temperature is above "
        "5 °C. Volunteers meet at the Birchwood lot at 19:30 and carry the toads across the road in "
        "buckets.\n\n- Bring a torch and gloves.\n- Report injured animals to the duty coordinator."
    ),
    "contact": (
        "In an emergency call the station\u2019s duty phone on 0471 552 190; the nearest hospital is "
        "St. Aldric Hospital in Kessel Ford, 25 minutes away by car. The station manager since 2021 has "
        "been Jonas Berglund \u2014 he can be reached at the reception desk."
    ),
}

CASES = [
    # station ---------------------------------------------------------------------------------
    ("station", "When was the Lake Orrin Field Station founded?", "1987",
     "The Lake Orrin Field Station was founded in 1987", True, "exact"),
    ("station", "Who founded the Lake Orrin Field Station?", "Dr. Maren Toft",
     "founded in 1987 by the limnologist Dr. Maren Toft", True, "exact"),
    ("station", "How far is the Lake Orrin Field Station from Kessel Ford?", "14 kilometres",
     "It sits on the northern shore, 14 kilometres from the town of Kessel Ford", True, "line break in chunk"),
    ("station", "How many visitors does the Lake Orrin Field Station host each year?", "about 2,300",
     "hosts about 2,300 visitors each year", True, "exact"),
    ("station", "How many visitors does the Lake Orrin Field Station host each year?", "2300 visitors",
     "hosts about 2,300 visitors each year", True, "thousands separator"),
    ("station", "What does the station's record span?", "more than three decades of measurements",
     "now spans more than three decades of measurements", True, "hyphenated across a line"),
    ("station", "What does the station's record span?", "three decades",
     "spans   more than three\ndecades of measure- ments", True, "whitespace and hyphenation"),
    ("station", "What does the Lake Orrin Field Station monitor?", "the water quality of the lake",
     "THE LAKE ORRIN FIELD STATION WAS FOUNDED IN 1987 BY THE LIMNOLOGIST DR. MAREN TOFT TO MONITOR THE WATER QUALITY OF THE LAKE",
     True, "case"),
    ("station", "When was the Lake Orrin Field Station founded?", "1978",
     "The Lake Orrin Field Station was founded in 1978", False, "changed number in quote"),
    ("station", "Who founded the Lake Orrin Field Station?", "Dr. Maren Tofte",
     "by the limnologist Dr. Maren Tofte", False, "changed name in quote"),
    ("station", "When was the Lake Orrin Field Station founded?", "1978",
     "The Lake Orrin Field Station was founded in 1987", False, "wrong answer, right quote"),
    ("station", "Who founded the Lake Orrin Field Station?", "Maren Toft",
     "The Lake Orrin Field Station was set up in 1987 by Maren Toft", False, "paraphrased quote"),
    ("station", "How far is the Lake Orrin Field Station from Kessel Ford?", "14 kilometres",
     "hosts about 2,300 visitors each year", False, "answer not in quote"),
    ("station", "How many staff work at the Lake Orrin Field Station?", "12 staff",
     "The station keeps a continuous record of water temperature", False, "answer not in chunk"),
    # boat ------------------------------------------------------------------------------------
    ("boat", "What is the name of the research boat at Lake Orrin?", "Heron II",
     "The research boat Heron II takes visitors along on sampling trips", True, "exact"),
    ("boat", "How long does a sampling trip on the Heron II last?", "two hours",
     "Each trip lasts about two hours", True, "exact"),
    ("boat", "How long does a sampling trip on the Heron II last?", "2 hours",
     "Each trip lasts about two hours", True, "number word"),
    ("boat", "How many passengers can the Heron II carry?", "12",
     "carries at most 12 passengers", True, "exact"),
    ("boat", "At what time does the first boat leave in June?", "08:30",
     "June 5 08:30 15 °C", True, "table row without rules"),
    ("boat", "How many departures per week are there in August?", "6",
     "August | 6 | 08:00 | 19 °C", True, "table row"),
    ("boat", "What is the water temperature in October?", "11 °C",
     "October | 3 | 10:30 | 11°C", True, "space before unit"),
    ("boat", "At what time does the first boat leave in June?", "08:00",
     "June 5 08:00 15 °C", False, "changed number in table row"),
    ("boat", "How many passengers can the Heron II carry?", "20",
     "carries at most 20 passengers", False, "changed number in quote"),
    ("boat", "How many passengers can the Heron II carry?", "12",
     "Each trip lasts about two hours", False, "answer not in quote"),
    ("boat", "What is the research boat at Lake Orrin called?", "Heron III",
     "The research boat Heron II takes visitors", False, "wrong answer, right quote"),
    ("boat", "How much does a ticket for the Heron II cost?", "18 euros",
     "The research boat Heron II takes visitors along on sampling trips", False, "answer not in chunk"),
    ("boat", "Between which months does the Heron II run sampling trips?", "between April and October",
     "sampling trips between April and October", True, "exact"),
    ("boat", "Between which months does the Heron II run sampling trips?", "May to September",
     "sampling trips between May and September", False, "changed months in quote"),
    # birds -----------------------------------------------------------------------------------
    ("birds", "How many nesting pairs of grebes were counted in 2019?", "64",
     "In 2019 the station counted 64 nesting pairs", True, "exact"),
    ("birds", "How many nesting pairs of grebes were counted in 2019?", "64 pairs",
     "In 2019 the station counted 64 nesting pairs, the highest number since records began", True, "plural"),
    ("birds", "Since when has a pair of ospreys nested on the old radio mast?", "2015",
     "a pair has nested on the old radio mast since 2015", True, "exact"),
    ("birds", "Which birds breed in the reed beds west of the pier?", "great crested grebes",
     "The reed beds west of the pier shelter a breeding colony of great crested grebes ... In 2019 the station counted",
     True, "ellipsis"),
    ("birds", "How many nesting pairs of grebes were counted in 2019?", "64",
     "In 2019 ... 64 nesting pairs", True, "ellipsis inside"),
    ("birds", "How many nesting pairs of grebes were counted in 2019?", "46",
     "In 2019 the station counted 46 nesting pairs", False, "changed number in quote"),
    ("birds", "Since when has a pair of ospreys nested on the old radio mast?", "2015",
     "a pair has nested on the old water tower since 2015", False, "changed word in quote"),
    ("birds", "Which birds hunt over the open water from late April?", "ospreys",
     "In 2019 the station counted 64 nesting pairs", False, "answer not in quote"),
    ("birds", "Which birds breed in the reed beds west of the pier?", "mute swans",
     "The reed beds west of the pier shelter a breeding colony", False, "answer not in chunk"),
    ("birds", "How many nesting pairs of grebes were counted in 2019?", "64",
     "64 nesting pairs ... In 2019", False, "ellipsis out of order"),
    ("birds", "What did the station count in 2019?", "64 nesting pairs, the highest number since records began, of great crested grebes in the reed beds",
     "In 2019 the station counted 64 nesting pairs, the highest number since records began", False, "answer too long"),
    ("birds", "How many nesting pairs were counted in 2019?", "64",
     "counted 64", False, "quote too short"),
    # ferry -----------------------------------------------------------------------------------
    ("ferry", "What was the first ferry on Lake Orrin called?", "Orrin Star",
     'a steam launch named "Orrin Star", was built in 1911', True, "straight quotes for curly"),
    ("ferry", "In which year was the Orrin Star built?", "1911",
     "a steam launch named \u201cOrrin Star\u201d, was built in 1911", True, "exact"),
    ("ferry", "Which boatyard built the Orrin Star?", "the boatyard of Edvin Hallqvist",
     "built in 1911 by the boatyard of Edvin Hallqvist in Osby", True, "exact"),
    ("ferry", "When did the Marta Lind replace the last steam ferry?", "in 1964",
     "The Marta Lind replaced the last steam ferry in 1964", True, "exact"),
    ("ferry", "By how much did electric propulsion cut the Marta Lind's fuel costs?", "about 60 percent",
     "which cut its fuel costs by about 60 percent", True, "exact"),
    ("ferry", "By how much did electric propulsion cut the Marta Lind's fuel costs?", "sixty percent",
     "cut its fuel costs by about 60 percent", True, "number word"),
    ("ferry", "When was the Marta Lind converted to electric propulsion?", "2018",
     "was converted to electric   propulsion in 2018", True, "whitespace"),
    ("ferry", "In which year was the Orrin Star built?", "1911",
     "a steam launch named \u201cOrrin Star\u201d, was built in 1921", False, "changed number in quote"),
    ("ferry", "Which boatyard built the Orrin Star?", "Edvin Hallquist",
     "built in 1911 by the boatyard of Edvin Hallquist in Osby", False, "changed name in quote"),
    ("ferry", "When was the Marta Lind converted to electric propulsion?", "2018",
     "The Marta Lind replaced the last steam ferry in 1964", False, "answer not in quote"),
    ("ferry", "When did the Marta Lind replace the last steam ferry?", "1946",
     "The Marta Lind replaced the last steam ferry in 1964", False, "wrong answer, right quote"),
    ("ferry", "How many passengers does the Marta Lind carry?", "40 passengers",
     "The Marta Lind replaced the last steam ferry in 1964", False, "answer not in chunk"),
    ("ferry", "What did the Marta Lind replace in 1964?", "the last steam ferry",
     "The Marta Lind replaced the first steam ferry in 1964", False, "changed word in quote"),
    ("ferry", "What was the first ferry on Lake Orrin, the steam launch Orrin Star, called?", "Orrin Star",
     "a steam launch named \u201cOrrin Star\u201d", False, "answer in question"),
    # toads -----------------------------------------------------------------------------------
    ("toads", "At what time do the toad patrol volunteers meet?", "19:30",
     "Volunteers meet at the Birchwood lot at 19:30", True, "exact"),
    ("toads", "Where do the toad patrol volunteers meet?", "the Birchwood lot",
     "volunteers meet at the birchwood lot at 19:30", True, "case"),
    ("toads", "What should toad patrol volunteers bring?", "a torch and gloves",
     "Bring a torch and gloves.", True, "list item without bullet"),
    ("toads", "Whom should injured animals be reported to?", "the duty coordinator",
     "- Report injured animals to the duty coordinator.", True, "list item with bullet"),
    ("toads", "Above which air temperature does the toad patrol run?", "5 °C",
     "when the air temperature is above 5°C", True, "space before unit"),
    ("toads", "In which months does the toad patrol run?", "March and April",
     "The toad patrol runs on rainy evenings in March and April", True, "exact"),
    ("toads", "At what time do the toad patrol volunteers meet?", "19:00",
     "Volunteers meet at the Birchwood lot at 19:00", False, "changed time in quote"),
    ("toads", "Where do the toad patrol volunteers meet?", "the Birchwood lot",
     "Volunteers meet at the station gate at 19:30", False, "changed place in quote"),
    ("toads", "What should toad patrol volunteers bring?", "a reflective vest",
     "Bring a torch and gloves.", False, "answer not in quote"),
    ("toads", "How many toads are carried across the road each year?", "40,000",
     "carry the toads across the road in buckets", False, "answer not in chunk"),
    ("toads", "In which months does the toad patrol run?", "March and April",
     "The toad patrol runs on dry evenings in March and April", False, "changed word in quote"),
    ("toads", "In which months does the toad patrol run?", "March and April",
     "Volunteers meet at the Birchwood lot at 19:30", False, "answer not in quote"),
    # contact ---------------------------------------------------------------------------------
    ("contact", "What is the duty phone number of the field station?", "0471 552 190",
     "call the station's duty phone on 0471 552 190", True, "straight apostrophe for curly"),
    ("contact", "Which hospital is nearest to the field station?", "St. Aldric Hospital",
     "the nearest hospital is St. Aldric Hospital in Kessel Ford", True, "exact"),
    ("contact", "Who has been the station manager since 2021?", "Jonas Berglund",
     "The station manager since 2021 has been Jonas Berglund - he can be reached", True, "dash variant"),
    ("contact", "How far away by car is St. Aldric Hospital?", "25 minutes",
     "St. Aldric Hospital in Kessel Ford, 25 minutes away by car", True, "exact"),
    ("contact", "What is the duty phone number of the field station?", "0471 552 109",
     "call the station's duty phone on 0471 552 109", False, "changed digits in quote"),
    ("contact", "Who has been the station manager since 2021?", "Jonas Bergman",
     "The station manager since 2021 has been Jonas Bergman", False, "changed name in quote"),
    ("contact", "How far away by car is St. Aldric Hospital?", "45 minutes",
     "St. Aldric Hospital in Kessel Ford, 25 minutes away by car", False, "wrong answer, right quote"),
    ("contact", "Who has been the station manager since 2021?", "Jonas Berglund",
     "the nearest hospital is St. Aldric Hospital in Kessel Ford", False, "answer not in quote"),
    ("contact", "Who was the station manager before 2021?", "Maren Toft",
     "The station manager since 2021 has been Jonas Berglund", False, "answer not in chunk"),
    ("contact", "Who has been the station manager since 2021?", "Jonas Berglund",
     "The birds manager since 2021 has been Jonas Berglund", False, "wrong quote from elsewhere"),
    ("contact", "Which birds breed in the reed beds west of the pier?", "great crested grebes",
     "The reed beds west of the pier shelter a breeding colony of great crested grebes", False,
     "quote from another chunk"),
    ("contact", "", "Jonas Berglund", "The station manager since 2021 has been Jonas Berglund", False, "empty question"),
    ("contact", "Who has been the station manager since 2021?", "Jonas Berglund", "", False, "empty quote"),
]  # fmt: skip
