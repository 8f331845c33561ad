"""deblur: remove motion blur from photos with an attentive multi-scale network."""

__version__ = "0.1.0"
