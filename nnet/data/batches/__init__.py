"""From pixels to model inputs: the pixel normalisation, TenCrop, image stores, paired augmentation and
the one training-batch builder."""
