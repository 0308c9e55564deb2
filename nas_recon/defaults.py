"""Defaults shared by every command and library function, declared once."""

from __future__ import annotations

SIZE = 320  # fastMRI's image side: the pairing crop of the images, and the size costs are reported at
ACCELERATIONS = (4.0, 8.0)  # the paper's undersampling factors (training draws from them; evaluation reports each)
DEVICES = ("auto", "cpu", "cuda")
SUPERVISIONS = ("full", "ssdu")  # fully sampled references, or SSDU self-supervision (nas_recon.data.ssdu)
SSDU_SELECTIONS = ("uniform", "gaussian")  # how SSDU draws its held-out columns
SSDU_RHO = 0.4  # |Lambda| / |Omega|, SSDU's choice
