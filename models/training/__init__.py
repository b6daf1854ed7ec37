"""Training (PyTorch, the ``[train]`` extra): data, networks, training loops, exports.

``synthetic`` (regressor training hands drawn on the fly), ``regressor`` (the network),
``torch_skinning`` (the hand model in torch), ``train`` and ``export`` (ONNX + manifest),
``interaction_data`` and ``train_interaction_prior`` (the two-hand prior), and the asset
builders ``build_open_hand`` and ``build_uv``. Nothing at run time imports this package.
"""
