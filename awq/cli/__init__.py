"""Command-line entry points; each parses arguments, calls the library, prints."""
