"""MT-EmotiEffNet (Savchenko, ABAW4 2022): the paper's methods.

* ``emotieffnet`` (`pretrain`): EfficientNet trained for 8 expressions + valence/arousal.
* ``mtl_heads`` (`mtl_heads`, `features`, `mtl_report`, `mtl_plots`): MLP heads on the
  frozen backbone's features, AU-threshold and blending tuning, the report.
* ``lsd`` (`lsd`, `lsd_data`, `lsd_report`, `super_resolution`): learning from
  synthetic data.
"""
