//! A Rust client of imgmesh's public gRPC API, `imgmesh.image.v1`
//! (docs/grpc-api.md): connect with an API key, name a Source and an asset,
//! describe the derivative with typed imgix [`Params`], and get its bytes.
//!
//! ```no_run
//! # async fn example() -> Result<(), imgmesh_client::ClientError> {
//! use imgmesh_client::{Format, ImageClient, Params, Source, Target};
//!
//! let mut client = ImageClient::connect("http://127.0.0.1:9082", "imk_…").await?;
//! let target = Target::new(Source::Subdomain("demo".into()), "photos/cat.jpg")
//!     .with_params(Params::new().format(Format::Webp).quality(70));
//! let thumbnail = client.render(&target.clone().with_params(Params::new().width(200))).await?;
//! let srcset = client.srcset(&target, &[320, 640, 960]).await?;
//! println!("{} bytes; srcset of {}", thumbnail.data.len(), srcset.len());
//! # Ok(())
//! # }
//! ```
//!
//! [`ImageClient::render`] streams one derivative, [`ImageClient::render_set`]
//! several of one original in one call (one fetch and one decode on the
//! server), [`ImageClient::srcset`] is `render_set` over a list of widths,
//! and [`ImageClient::describe`] answers what a render would do. Failures
//! are [`ClientError`]s carrying the gRPC status, whose `ErrorInfo` reason
//! the docs list.

#![warn(missing_docs)]

mod params;

use imgmesh_proto::image::v1::image_service_client::ImageServiceClient;
use imgmesh_proto::image::v1::{
    DescribeRequest, DescribeResponse, ImageTarget, RenderMetadata, RenderRequest,
    RenderSetRequest, image_target, render_response, render_set_response,
};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub use imgmesh_proto::image::v1::CacheStatus;
pub use params::{Fit, Format, Params};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not one a gRPC channel can dial.
    #[error("invalid url: {0}")]
    InvalidUrl(String),
    /// The API key cannot be sent as metadata (e.g. it holds a control
    /// character).
    #[error("the api key cannot be sent as metadata")]
    InvalidKey,
    /// The server could not be reached.
    #[error("cannot connect: {0}")]
    Connect(#[from] tonic::transport::Error),
    /// The server answered with an error; its `ErrorInfo` reason says why.
    #[error("{}", .0.message())]
    Status(#[from] tonic::Status),
    /// The server's stream did not have the shape the API promises.
    #[error("malformed answer: {0}")]
    Malformed(&'static str),
}

/// The Source serving an asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// By id, e.g. `src_4f0c2a9d1b7e`.
    Id(String),
    /// By its unique name.
    Name(String),
    /// By its subdomain.
    Subdomain(String),
}

/// What to render: a Source, an asset path on it and the parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The Source.
    pub source: Source,
    /// The asset path, without the leading `/` (percent-encoded as in a URL).
    pub path: String,
    /// The imgix parameters.
    pub params: Params,
    /// An HTTP `Accept` value, consulted only by `auto=format`.
    pub accept: Option<String>,
}

/// One rendered derivative: what the server said about it and its bytes.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Content type, size, ETag, cache status, lifetime and dimensions.
    pub metadata: RenderMetadata,
    /// The derivative's bytes, whole.
    pub data: Vec<u8>,
}

/// A rendered srcset: one derivative per width, in the order asked.
#[derive(Debug, Clone)]
pub struct Srcset {
    /// Each width asked for and its derivative.
    pub candidates: Vec<(u32, Rendered)>,
}

/// A client of `imgmesh.image.v1.ImageService` presenting one API key.
/// Cheap to clone: clones share the connection.
#[derive(Debug, Clone)]
pub struct ImageClient {
    inner: ImageServiceClient<InterceptedService<Channel, Bearer>>,
}

/// Adds `authorization: Bearer <key>` to every call.
#[derive(Debug, Clone)]
struct Bearer(MetadataValue<Ascii>);

// === impl Target ===

impl Target {
    /// `path` on `source`, with no parameters.
    pub fn new(source: Source, path: impl Into<String>) -> Target {
        Target {
            source,
            path: path.into(),
            params: Params::new(),
            accept: None,
        }
    }

    /// The same target with `params` laid over its parameters.
    pub fn with_params(mut self, params: Params) -> Target {
        self.params = self.params.merged(&params);
        self
    }

    /// The wire form.
    fn to_proto(&self) -> ImageTarget {
        let source = match &self.source {
            Source::Id(id) => image_target::Source::SourceId(id.clone()),
            Source::Name(name) => image_target::Source::SourceName(name.clone()),
            Source::Subdomain(subdomain) => image_target::Source::Subdomain(subdomain.clone()),
        };
        ImageTarget {
            source: Some(source),
            path: self.path.clone(),
            params: self.params.to_string(),
            accept: self.accept.clone().unwrap_or_default(),
        }
    }
}

// === impl Srcset ===

impl Srcset {
    /// How many candidates.
    pub fn len(&self) -> usize {
        self.candidates.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.candidates.is_empty()
    }

    /// An HTML `srcset` value, `"<url> 320w, <url> 640w"`, with each
    /// candidate's URL from `url_of` (e.g. where the caller stored its
    /// bytes, or the public URL from [`ImageClient::describe`]).
    pub fn attribute(&self, mut url_of: impl FnMut(u32, &Rendered) -> String) -> String {
        self.candidates
            .iter()
            .map(|(width, rendered)| format!("{} {width}w", url_of(*width, rendered)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

// === impl ImageClient ===

impl ImageClient {
    /// Connects to the API at `url` (e.g. `http://127.0.0.1:9082`),
    /// presenting `api_key` on every call.
    pub async fn connect(url: &str, api_key: &str) -> Result<ImageClient, ClientError> {
        let endpoint = tonic::transport::Endpoint::from_shared(url.to_owned())
            .map_err(|_| ClientError::InvalidUrl(url.to_owned()))?;
        let channel = endpoint.connect().await?;
        ImageClient::over(channel, api_key)
    }

    /// A client over an existing `channel` (e.g. one with TLS settings).
    pub fn over(channel: Channel, api_key: &str) -> Result<ImageClient, ClientError> {
        let bearer = format!("Bearer {api_key}")
            .parse()
            .map_err(|_| ClientError::InvalidKey)?;
        Ok(ImageClient {
            inner: ImageServiceClient::with_interceptor(channel, Bearer(bearer)),
        })
    }

    /// Renders `target`, collecting the streamed chunks.
    pub async fn render(&mut self, target: &Target) -> Result<Rendered, ClientError> {
        let request = RenderRequest {
            target: Some(target.to_proto()),
        };
        let mut stream = self.inner.render(request).await?.into_inner();
        let first = stream.message().await?.and_then(|message| message.part);
        let Some(render_response::Part::Metadata(metadata)) = first else {
            return Err(ClientError::Malformed("the first message is not metadata"));
        };
        let mut data = Vec::with_capacity(usize::try_from(metadata.size).unwrap_or(0));
        while let Some(message) = stream.message().await? {
            match message.part {
                Some(render_response::Part::Chunk(chunk)) => data.extend_from_slice(&chunk),
                _ => return Err(ClientError::Malformed("a later message is not a chunk")),
            }
        }
        Ok(Rendered { metadata, data })
    }

    /// Renders one derivative per entry of `variants`, each laid over
    /// `target`'s parameters, in one call: the server fetches and decodes
    /// the original once. The derivatives come back in `variants`' order.
    pub async fn render_set(
        &mut self,
        target: &Target,
        variants: &[Params],
    ) -> Result<Vec<Rendered>, ClientError> {
        let request = RenderSetRequest {
            target: Some(target.to_proto()),
            variants: variants.iter().map(Params::to_string).collect(),
        };
        let mut stream = self.inner.render_set(request).await?.into_inner();
        let mut rendered: Vec<Rendered> = Vec::with_capacity(variants.len());
        while let Some(message) = stream.message().await? {
            let index = message.index as usize;
            match message.part {
                Some(render_set_response::Part::Metadata(metadata)) if index == rendered.len() => {
                    rendered.push(Rendered {
                        metadata,
                        data: Vec::new(),
                    });
                }
                Some(render_set_response::Part::Chunk(chunk)) if index + 1 == rendered.len() => {
                    rendered[index].data.extend_from_slice(&chunk);
                }
                _ => return Err(ClientError::Malformed("a set's messages are out of order")),
            }
        }
        if rendered.len() != variants.len() {
            return Err(ClientError::Malformed("a set answered fewer derivatives"));
        }
        Ok(rendered)
    }

    /// A srcset of `target` at each of `widths` (`w` laid over its
    /// parameters), rendered with one [`ImageClient::render_set`] call.
    pub async fn srcset(&mut self, target: &Target, widths: &[u32]) -> Result<Srcset, ClientError> {
        let variants: Vec<Params> = widths.iter().map(|&w| Params::new().width(w)).collect();
        let rendered = self.render_set(target, &variants).await?;
        Ok(Srcset {
            candidates: widths.iter().copied().zip(rendered).collect(),
        })
    }

    /// What rendering `target` would do: the canonical plan, the cache key,
    /// the public URL serving it, and (read from the original's header,
    /// nothing rendered) the output's `width`, `height`, `content_type` and
    /// the render's `estimated_decoded_bytes`.
    pub async fn describe(&mut self, target: &Target) -> Result<DescribeResponse, ClientError> {
        let request = DescribeRequest {
            target: Some(target.to_proto()),
        };
        Ok(self.inner.describe(request).await?.into_inner())
    }
}

// === impl Bearer ===

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target's wire form names its Source the way it was given and carries the query the builder wrote.
    #[test]
    fn target_wire_form() {
        let target = Target::new(Source::Name("demo".into()), "a/b.jpg")
            .with_params(Params::new().format(Format::Png))
            .with_params(Params::new().width(100));
        let proto = target.to_proto();
        assert_eq!(
            proto.source,
            Some(image_target::Source::SourceName("demo".into()))
        );
        assert_eq!(proto.params, "fm=png&w=100");
        assert_eq!(proto.path, "a/b.jpg");
    }

    /// A srcset attribute lists each candidate with its width descriptor, in order.
    #[test]
    fn srcset_attribute_lists_widths() {
        let rendered = |width| Rendered {
            metadata: RenderMetadata {
                width,
                ..RenderMetadata::default()
            },
            data: Vec::new(),
        };
        let srcset = Srcset {
            candidates: vec![(320, rendered(320)), (640, rendered(640))],
        };
        let attribute = srcset.attribute(|width, _| format!("/img/{width}.webp"));
        assert_eq!(attribute, "/img/320.webp 320w, /img/640.webp 640w");
    }

    /// A key that cannot be metadata is refused before any call.
    #[tokio::test]
    async fn unsendable_keys_are_refused() {
        let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:1").connect_lazy();
        assert!(matches!(
            ImageClient::over(channel, "imk_\nkey"),
            Err(ClientError::InvalidKey)
        ));
    }
}
