//! Readers of a `Source`'s setting groups: each returns the group, or the
//! group's empty value when the message leaves it unset (as prost's
//! getters do for scalars), so callers read `source.routing().subdomain`
//! rather than unwrap an `Option` at every use.

use crate::registry::v1::{
    AccessKeyHint, CachePolicy, DeployState, FallbackImage, FallbackImages, Location, Routing,
    Source,
};

static NO_ROUTING: Routing = Routing {
    subdomain: String::new(),
    custom_domains: Vec::new(),
};
static NO_LOCATION: Location = Location {
    bucket: String::new(),
    region: String::new(),
    endpoint: String::new(),
    path_prefix: String::new(),
};
static NO_KEY: AccessKeyHint = AccessKeyHint {
    id_hint: String::new(),
};
static NO_CACHE_POLICY: CachePolicy = CachePolicy {
    ttl_seconds: 0,
    behavior: 0,
    error_ttl_seconds: 0,
};
static NO_FALLBACK_IMAGE: FallbackImage = FallbackImage {
    path: String::new(),
    append_params: false,
};
static NO_FALLBACK_IMAGES: FallbackImages = FallbackImages {
    missing: None,
    error: None,
};
static NO_DEPLOY_STATE: DeployState = DeployState {
    status: 0,
    message: String::new(),
    last_deployed_at: 0,
};

// === impl Source ===

impl Source {
    /// Which hosts reach the Source.
    pub fn routing(&self) -> &Routing {
        self.routing.as_ref().unwrap_or(&NO_ROUTING)
    }

    /// Where its objects live.
    pub fn location(&self) -> &Location {
        self.location.as_ref().unwrap_or(&NO_LOCATION)
    }

    /// The hint of its read key.
    pub fn access_key(&self) -> &AccessKeyHint {
        self.access_key.as_ref().unwrap_or(&NO_KEY)
    }

    /// Its cache policy.
    pub fn cache_policy(&self) -> &CachePolicy {
        self.cache_policy.as_ref().unwrap_or(&NO_CACHE_POLICY)
    }

    /// What it serves instead of a missing or broken asset.
    pub fn fallback_images(&self) -> &FallbackImages {
        self.fallback_images.as_ref().unwrap_or(&NO_FALLBACK_IMAGES)
    }

    /// The hint of its upload key; an empty hint when it has none.
    pub fn upload_access_key(&self) -> &AccessKeyHint {
        self.upload_access_key.as_ref().unwrap_or(&NO_KEY)
    }

    /// Where it stands in its deployment.
    pub fn deploy_state(&self) -> &DeployState {
        self.deploy_state.as_ref().unwrap_or(&NO_DEPLOY_STATE)
    }
}

// === impl FallbackImages ===

impl FallbackImages {
    /// The image served instead of a missing asset.
    pub fn missing(&self) -> &FallbackImage {
        self.missing.as_ref().unwrap_or(&NO_FALLBACK_IMAGE)
    }

    /// The image served instead of an asset that fails to render.
    pub fn error(&self) -> &FallbackImage {
        self.error.as_ref().unwrap_or(&NO_FALLBACK_IMAGE)
    }
}
