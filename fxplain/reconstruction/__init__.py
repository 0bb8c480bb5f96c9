"""The face-reconstruction module: a decoder from deep features back to faces, its training, its method.

:class:`Decoder` rebuilds a face from its embedding and maps each feature
dimension to the facial region it encodes (:meth:`Decoder.region_atlas` over
a dataset); :func:`train_decoder` trains one
in the C core; :func:`default_decoder` gives a model's default decoder
(trained once on johns, cached); importing this package registers the
``"reconstruction"`` explanation method.
"""

from .atlas import ATLAS_REGIONS, RegionAtlas
from .decoder import DECODER_KIND, Decoder, decoder_spec, load_decoder, to_uint8
from .default import DEFAULT_RECIPE, default_decoder, default_decoder_path
from .method import Reconstruction
from .training import DecoderTraining, train_decoder

__all__ = ["ATLAS_REGIONS", "DECODER_KIND", "DEFAULT_RECIPE", "Decoder", "DecoderTraining", "Reconstruction", "RegionAtlas", "decoder_spec",
           "default_decoder", "default_decoder_path", "load_decoder", "to_uint8", "train_decoder"]
