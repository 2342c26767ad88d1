"""Domain constants shared by every layer (views, labels, modalities, working spacing).

Kept in one module so that the web tier, the engine and the training tools agree on spelling.
"""

RESEARCH_BANNER = "Research use only — not for clinical use"

MODALITIES = ("MG", "US")
VIEWS = ("CC", "MLO", "ML", "LM", "XCCL", "XCCM", "FB", "SIO", "AT")
LATERALITIES = ("L", "R")

# Image-level verdicts, from least to most concerning.
VERDICT_NO_LESION = "no_suspicious_lesion"
VERDICT_BENIGN = "benign"
VERDICT_MALIGNANT = "malignant"
VERDICT_NORMAL = "normal"  # ultrasound classifier's third class
VERDICTS = (VERDICT_NO_LESION, VERDICT_NORMAL, VERDICT_BENIGN, VERDICT_MALIGNANT)

LESION_LABELS = ("benign", "malignant")

# Mammograms are analysed at mini-MIAS' native 0.2 mm per pixel (CBIS-DDSM's 0.05 mm / 4).
DEFAULT_MG_SPACING_MM = 0.2
