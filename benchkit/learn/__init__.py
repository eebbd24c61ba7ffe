"""The learn layer: training and prediction loops, schedules, seeding, devices."""
