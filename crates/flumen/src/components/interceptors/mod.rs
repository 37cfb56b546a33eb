//! Interceptors: one module per Flume interceptor type.

use super::InterceptorDescriptor;

/// Every interceptor type flumen knows, one line each.
pub static INTERCEPTORS: &[InterceptorDescriptor] = &[];
