"""P1, Luthra, Yang, Galanti 2025: the configs of its reproduction."""
