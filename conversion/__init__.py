"""Framework-free MobileBERT weight conversion (numpy, safetensors, h5py; never torch or tensorflow).

weight_map  the table of every tensor's PyTorch / TF (Keras h5) / TF1 name and transform
formats     readers and writers: safetensors (also sharded), pytorch_model.bin (restricted unpickler), tf_model.h5
convert     pt_to_tf / tf_to_pt, strict (every tensor used, every target filled, shapes checked)
tf1         Google's original TF1 checkpoints (the only module that imports tensorflow)
__main__    the `python -m conversion` / `mobilebert-convert` command line
"""
