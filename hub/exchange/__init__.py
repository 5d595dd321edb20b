"""Exchange between programs: rates, quotes, conversions."""
