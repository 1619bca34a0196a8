"""Knowledge extraction: documents -> structural chunks -> cleaned chunks -> verified QA -> SFT rows."""
