"""Training: the Trainer's loop and its add-ons (guards, live edits, distributed, snapshots), schedules, precision, events."""
