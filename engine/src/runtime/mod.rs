//! The glommio runtime: executors per core and the cross-core mesh.
