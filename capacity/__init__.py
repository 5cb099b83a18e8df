"""Database inventory, daily sizes, aggregates and forecasts."""
