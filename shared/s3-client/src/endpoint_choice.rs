//! Which endpoints a Source's bucket is reached through, in order of
//! preference: a pure function of the Source's region and endpoint.

/// The regional hostname of us-east-1, tried first for AWS buckets there.
pub const AWS_US_EAST_1_ENDPOINT: &str = "https://s3.us-east-1.amazonaws.com";

/// The global S3 hostname, the fallback for AWS buckets in us-east-1.
pub const AWS_GLOBAL_ENDPOINT: &str = "https://s3.amazonaws.com";

/// One way to reach a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointChoice {
    /// Endpoint URL to send requests to; `None` lets the SDK derive the
    /// regional AWS endpoint from the region.
    pub url: Option<String>,
    /// Whether the bucket goes in the path (`host/bucket/key`) rather than
    /// the host name (`bucket.host/key`).
    pub force_path_style: bool,
}

/// The endpoints to try for a bucket in `region`, reached through the
/// S3-compatible `endpoint` when there is one (empty means AWS S3):
///
/// - a custom endpoint: exactly that endpoint, path-style (S3-compatible
///   stores rarely have wildcard DNS for `<bucket>.<host>`);
/// - AWS in us-east-1: the regional hostname, then the global one;
/// - AWS elsewhere: only the region's own endpoint, as the SDK derives it.
pub fn endpoint_choices(region: &str, endpoint: Option<&str>) -> Vec<EndpointChoice> {
    match endpoint.filter(|endpoint| !endpoint.is_empty()) {
        Some(endpoint) => vec![EndpointChoice {
            url: Some(endpoint.to_owned()),
            force_path_style: true,
        }],
        None if region == "us-east-1" => vec![
            EndpointChoice {
                url: Some(AWS_US_EAST_1_ENDPOINT.to_owned()),
                force_path_style: false,
            },
            EndpointChoice {
                url: Some(AWS_GLOBAL_ENDPOINT.to_owned()),
                force_path_style: false,
            },
        ],
        None => vec![EndpointChoice {
            url: None,
            force_path_style: false,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(url: &str) -> EndpointChoice {
        EndpointChoice {
            url: Some(url.to_owned()),
            force_path_style: false,
        }
    }

    /// AWS us-east-1: the regional hostname first, the global one second.
    #[test]
    fn us_east_1_is_regional_first_then_global() {
        assert_eq!(
            endpoint_choices("us-east-1", None),
            [
                aws("https://s3.us-east-1.amazonaws.com"),
                aws("https://s3.amazonaws.com")
            ]
        );
        assert_eq!(
            endpoint_choices("us-east-1", Some("")),
            endpoint_choices("us-east-1", None)
        );
    }

    /// Other AWS regions have only their regional endpoint, no fallback.
    #[test]
    fn other_regions_are_regional_only() {
        for region in ["eu-west-1", "us-east-2", "us-west-2", "ap-southeast-1"] {
            assert_eq!(
                endpoint_choices(region, None),
                [EndpointChoice {
                    url: None,
                    force_path_style: false
                }],
                "{region}"
            );
        }
    }

    /// A custom endpoint is used unchanged, path-style, whatever the region
    /// (us-east-1 included: no AWS fallback for S3-compatible stores).
    #[test]
    fn custom_endpoints_are_unchanged_and_path_style() {
        for region in ["us-east-1", "eu-west-1", "garage"] {
            assert_eq!(
                endpoint_choices(region, Some("http://127.0.0.1:9000")),
                [EndpointChoice {
                    url: Some("http://127.0.0.1:9000".to_owned()),
                    force_path_style: true
                }],
                "{region}"
            );
        }
    }
}
