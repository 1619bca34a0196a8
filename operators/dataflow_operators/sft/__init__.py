"""SFT data operators: instruction/response checks, refusals, conversation format, chat format."""
