//! Pure domain of the Detections service.
