"""The case domain (办件): intake, lifecycle, clocks, licences, status, numbers, tracking."""
