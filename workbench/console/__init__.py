"""The console layer: the only code that parses arguments, prints, prompts or exits."""
