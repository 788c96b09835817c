"""A release as the source tree holds it: `manifest` (which files a mirror must serve whole,
pure); the tree is read by `syncd.files`."""
