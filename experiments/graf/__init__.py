"""P2, Graf, Hofer, Niethammer, Kwitt 2021: the configs of its reproduction."""
