"""What the C, python and WebGPU backends share: safe spelling of model-supplied text in generated sources."""
