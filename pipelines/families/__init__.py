"""The model families a server knows (see `pipelines.family`), one module each. Adding a family is its module
here and a line in FAMILIES. Pure: no torch."""
from pipelines.families.animatediff import ANIMATEDIFF
from pipelines.families.flux1 import FLUX1
from pipelines.families.flux1_fill import FLUX1_FILL
from pipelines.families.flux2 import FLUX2
from pipelines.families.flux2_dev import FLUX2_DEV
from pipelines.families.ltx2 import LTX2
from pipelines.families.qwen_image import QWEN_IMAGE
from pipelines.families.qwen_image_edit import QWEN_IMAGE_EDIT
from pipelines.families.sd15 import SD15
from pipelines.families.sd35 import SD35
from pipelines.families.sdxl import SDXL
from pipelines.families.svd import SVD
from pipelines.families.wan22 import WAN22
from pipelines.families.z_image import Z_IMAGE
from pipelines.family import FamilyRegistry

# Catalogue kinds that steer or follow a family's model rather than draw on their own.
HELPERS = ("controlnet", "upscaler", "interpolator")

FAMILIES = FamilyRegistry((SD15, SDXL, FLUX1, FLUX1_FILL, FLUX2, FLUX2_DEV, SD35, QWEN_IMAGE, QWEN_IMAGE_EDIT, Z_IMAGE, SVD, ANIMATEDIFF,
                           WAN22, LTX2),
                          helpers=HELPERS)
