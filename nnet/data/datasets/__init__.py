"""Reading full-reference IQA datasets: presets, readers of each layout, label files, splits and checks."""
