"""Reports a person reads: PNG figures (and, later, summaries) of forecasts."""
