"""Pure rules: validation, room lifetime, meeting codes, links. No I/O happens here."""
