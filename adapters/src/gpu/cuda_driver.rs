//! [`GpuProbe`] over the CUDA driver API (`libcuda.so.1`), loaded with `libloading` at the
//! first probe so the binary starts, and the CPU engine runs, on hosts without a driver.
//!
//! The driver API gives all three facts the engine name needs: the compute capability
//! and the multiprocessor count (NVML has no multiprocessor count).

use std::ffi::{CStr, c_char, c_int, c_uint};
use std::path::PathBuf;

use libloading::{Library, Symbol};
use ports::{GpuInfo, GpuProbe, GpuUnavailable};

const CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: c_int = 16;
const CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: c_int = 75;
const CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: c_int = 76;
const CUDA_ERROR_NO_DEVICE: c_int = 100;
const CUDA_ERROR_INSUFFICIENT_DRIVER: c_int = 35;

type CuResult = c_int;
type CuDevice = c_int;

/// Probes device `device` through the driver library at `library` (default `libcuda.so.1`,
/// found by the dynamic loader; the NVIDIA container runtime mounts it).
#[derive(Debug, Clone)]
pub struct CudaDriverProbe {
    library: PathBuf,
    device: u32,
}

impl Default for CudaDriverProbe {
    fn default() -> Self {
        Self::new("libcuda.so.1", 0)
    }
}

impl CudaDriverProbe {
    pub fn new(library: impl Into<PathBuf>, device: u32) -> Self {
        Self {
            library: library.into(),
            device,
        }
    }

    fn unavailable(&self, what: String) -> GpuUnavailable {
        GpuUnavailable(what)
    }

    fn probe_inner(&self) -> Result<GpuInfo, GpuUnavailable> {
        // SAFETY: loading the NVIDIA driver library runs its initialisers, which is what
        // every CUDA program does; the symbols below have the driver API's C signatures.
        let library = unsafe { Library::new(&self.library) }.map_err(|e| {
            self.unavailable(format!(
                "the NVIDIA driver library {} cannot be loaded ({e}): this host has no NVIDIA \
                 driver, or the container was started without the GPU (docker run --gpus all \
                 with the NVIDIA container runtime)",
                self.library.display()
            ))
        })?;
        let api = Api::load(&library).map_err(|e| {
            self.unavailable(format!(
                "{} is not a usable CUDA driver ({e}); install a current NVIDIA driver",
                self.library.display()
            ))
        })?;
        // SAFETY: the calls follow the driver API's contracts: cuInit first, out-pointers
        // to live locals, a name buffer with its true length.
        unsafe {
            let init = (api.init)(0);
            if init == CUDA_ERROR_NO_DEVICE {
                return Err(self.unavailable(
                    "the NVIDIA driver is installed but sees no GPU (CUDA_ERROR_NO_DEVICE): \
                     check nvidia-smi, and that the container was given a GPU (--gpus all)"
                        .into(),
                ));
            }
            if init == CUDA_ERROR_INSUFFICIENT_DRIVER {
                return Err(self.unavailable(
                    "the NVIDIA driver is older than this CUDA needs \
                     (CUDA_ERROR_INSUFFICIENT_DRIVER): update the driver"
                        .into(),
                ));
            }
            api.check(init, "cuInit")?;
            let mut count: c_int = 0;
            api.check((api.device_count)(&mut count), "cuDeviceGetCount")?;
            if count <= 0 {
                return Err(self.unavailable("the NVIDIA driver sees no GPU".into()));
            }
            let ordinal = c_int::try_from(self.device).unwrap_or(c_int::MAX);
            if ordinal >= count {
                return Err(self.unavailable(format!(
                    "GPU {} was asked for but the driver sees {count}",
                    self.device
                )));
            }
            let mut device: CuDevice = 0;
            api.check((api.device_get)(&mut device, ordinal), "cuDeviceGet")?;
            let mut name = [0 as c_char; 256];
            api.check(
                (api.device_name)(name.as_mut_ptr(), name.len() as c_int, device),
                "cuDeviceGetName",
            )?;
            let name = CStr::from_ptr(name.as_ptr()).to_string_lossy().into_owned();
            let attribute = |attribute: c_int, what: &str| -> Result<u32, GpuUnavailable> {
                let mut value: c_int = 0;
                api.check((api.attribute)(&mut value, attribute, device), what)?;
                Ok(u32::try_from(value).unwrap_or(0))
            };
            Ok(GpuInfo {
                name,
                cc_major: attribute(
                    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                    "compute capability",
                )?,
                cc_minor: attribute(
                    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
                    "compute capability",
                )?,
                sm_count: attribute(
                    CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
                    "multiprocessor count",
                )?,
            })
        }
    }
}

impl GpuProbe for CudaDriverProbe {
    fn probe(&self) -> Result<GpuInfo, GpuUnavailable> {
        self.probe_inner()
    }
}

/// The driver entry points used, resolved from one loaded library.
struct Api<'lib> {
    init: Symbol<'lib, unsafe extern "C" fn(c_uint) -> CuResult>,
    device_count: Symbol<'lib, unsafe extern "C" fn(*mut c_int) -> CuResult>,
    device_get: Symbol<'lib, unsafe extern "C" fn(*mut CuDevice, c_int) -> CuResult>,
    device_name: Symbol<'lib, unsafe extern "C" fn(*mut c_char, c_int, CuDevice) -> CuResult>,
    attribute: Symbol<'lib, unsafe extern "C" fn(*mut c_int, c_int, CuDevice) -> CuResult>,
    error_name:
        Option<Symbol<'lib, unsafe extern "C" fn(CuResult, *mut *const c_char) -> CuResult>>,
}

impl<'lib> Api<'lib> {
    fn load(library: &'lib Library) -> Result<Self, libloading::Error> {
        // SAFETY: the signatures match the CUDA driver API (cuda.h, CUDA 11–13).
        unsafe {
            Ok(Self {
                init: library.get(b"cuInit\0")?,
                device_count: library.get(b"cuDeviceGetCount\0")?,
                device_get: library.get(b"cuDeviceGet\0")?,
                device_name: library.get(b"cuDeviceGetName\0")?,
                attribute: library.get(b"cuDeviceGetAttribute\0")?,
                error_name: library.get(b"cuGetErrorName\0").ok(),
            })
        }
    }

    fn check(&self, result: CuResult, call: &str) -> Result<(), GpuUnavailable> {
        if result == 0 {
            return Ok(());
        }
        let mut name: *const c_char = std::ptr::null();
        let known = self.error_name.as_ref().is_some_and(|f| {
            // SAFETY: cuGetErrorName writes a pointer to a static string or fails.
            unsafe { f(result, &mut name) == 0 && !name.is_null() }
        });
        let name = if known {
            // SAFETY: a non-null static, NUL-terminated string from the driver.
            unsafe { CStr::from_ptr(name) }
                .to_string_lossy()
                .into_owned()
        } else {
            format!("error {result}")
        };
        Err(GpuUnavailable(format!(
            "the CUDA driver failed {call}: {name}; check nvidia-smi"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_driver_says_what_to_do() {
        let probe = CudaDriverProbe::new("/nonexistent/libcuda.so.1", 0);
        let error = probe.probe().expect_err("no driver there").to_string();
        assert!(error.starts_with("no usable GPU: "), "{error}");
        assert!(error.contains("/nonexistent/libcuda.so.1"), "{error}");
        assert!(error.contains("--gpus all"), "{error}");
    }

    #[test]
    fn a_library_that_is_not_the_driver_is_refused() {
        // Any shared library without the driver's symbols will do: the C library.
        let probe = CudaDriverProbe::new("libc.so.6", 0);
        let error = probe.probe().expect_err("not a driver").to_string();
        assert!(error.contains("not a usable CUDA driver"), "{error}");
    }
}
