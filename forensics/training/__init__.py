"""Training the sketch inverter: chip cache and pair dataset, losses, the adversarial term, the
trainer. Only training imports this package; queries use `forensics.inversion`."""
