"""Framework-free MobileBERT weight conversion (numpy, safetensors, h5py; never torch or tensorflow).

formats      readers and writers: safetensors (also sharded, with the hub's index), tf_model.h5, read_weights
pytorch_bin  pytorch_model.bin: read with a restricted unpickler (legacy files and writing through torch)
arrays       bfloat16, dtype casts
convert      pt_to_tf / tf_to_pt, strict (every tensor used, every target filled, shapes checked)
tf1          Google's original TF1 checkpoints (the only module that imports tensorflow)
directories  convert_checkpoint: directory to directory, what the command line does
verify       --verify: both frameworks' logits on the converted files (needs torch and tensorflow)
__main__     the `python -m conversion` / `mobilebert-convert` command line

Every tensor's PyTorch / TF (Keras h5) / TF1 name and transform comes from the one table,
mobilebert_common.weights; weight files are located by mobilebert_common.weight_files; output
directories are written all or nothing by mobilebert_common.staging. All three are shared with the
model packages.
"""
