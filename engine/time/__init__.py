"""Time: the working-day calendar, its administrator overrides, deadline clocks."""
