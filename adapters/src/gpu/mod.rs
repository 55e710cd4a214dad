//! Asking the GPU what it is (spec A4): the CUDA driver API, loaded at run time.

mod cuda_driver;

pub use cuda_driver::CudaDriverProbe;
