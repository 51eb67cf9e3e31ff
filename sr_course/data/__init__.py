"""Data: the images on disk and how training and testing read them (data lists, SRDataset with its
decoded-once patch cache, the built-in sample, the downloads) and MATLAB-exact imresize."""
