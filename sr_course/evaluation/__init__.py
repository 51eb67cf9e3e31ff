"""Evaluation: the papers' metrics (PSNR/SSIM on Y, LPIPS), evaluate() beside bicubic, super-resolving
whole images, the figures, the kept outputs and the artefacts read off them, the run records, the
report and the blind rating page."""
