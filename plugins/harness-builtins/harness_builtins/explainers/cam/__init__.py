"""Class activation maps: Grad-CAM and Grad-CAM++ on a model's target layer."""
