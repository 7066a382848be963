//! [`MeteringLayer`]: config only (the [`Meter`] it meters with).

use tower::Layer;

use crate::meter::Meter;
use crate::service::Metering;

impl Meter {
    /// The layer that meters requests with this meter.
    pub fn layer(&self) -> MeteringLayer {
        MeteringLayer {
            meter: self.clone(),
        }
    }
}

/// Meters every request: see the crate docs.
#[derive(Clone, Debug)]
pub struct MeteringLayer {
    meter: Meter,
}

impl MeteringLayer {
    /// The layer of `meter`.
    pub fn new(meter: &Meter) -> Self {
        meter.layer()
    }
}

impl<S> Layer<S> for MeteringLayer {
    type Service = Metering<S>;

    fn layer(&self, inner: S) -> Metering<S> {
        Metering::new(inner, self.meter.clone())
    }
}
