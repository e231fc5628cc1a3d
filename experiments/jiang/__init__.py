"""P3, Jiang et al. 2024: the configs of its reproduction."""
