//! Errors from AWS, classified: what went wrong decides what a user should do (wait,
//! fix credentials, fix the plan, check the network) and whether a call is retried.

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Throttled,
    NotFound,
    AccessDenied,
    /// The entity exists, is in use, or is being changed by someone else.
    Conflict,
    /// The request itself is wrong: a malformed policy, an invalid name, a quota.
    InvalidInput,
    /// The endpoint could not be reached, or did not answer in time.
    Network,
    /// No credentials, expired or unknown ones, a bad signature.
    Credentials,
    /// AWS failed on its side.
    Service,
    Other,
}

impl ErrorKind {
    /// From an AWS error code (IAM, STS and Lambda spell some of them differently).
    pub fn from_code(code: &str) -> ErrorKind {
        match code {
            "Throttling"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "TooManyRequestsException" => ErrorKind::Throttled,
            "NoSuchEntity" | "ResourceNotFoundException" => ErrorKind::NotFound,
            "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" => {
                ErrorKind::AccessDenied
            }
            "EntityAlreadyExists"
            | "DeleteConflict"
            | "ConcurrentModification"
            | "ResourceConflictException" => ErrorKind::Conflict,
            "MalformedPolicyDocument"
            | "InvalidInput"
            | "ValidationError"
            | "ValidationException"
            | "LimitExceeded"
            | "PolicyNotAttachable" => ErrorKind::InvalidInput,
            "InvalidClientTokenId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "UnrecognizedClientException"
            | "IncompleteSignature"
            | "MissingAuthenticationToken" => ErrorKind::Credentials,
            "ServiceFailure" | "ServiceUnavailable" | "InternalFailure" => ErrorKind::Service,
            _ => ErrorKind::Other,
        }
    }
}

/// An AWS call that failed, with the code and message AWS gave (or the transport's cause).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct AwsError {
    pub kind: ErrorKind,
    pub code: Option<String>,
    pub message: String,
}

impl AwsError {
    pub fn from_sdk<E: ProvideErrorMetadata + std::error::Error + 'static>(
        e: &SdkError<E, HttpResponse>,
    ) -> Self {
        let message = error_text(e);
        let code = e.code().map(str::to_string);
        let kind = match e {
            // A 5xx is AWS's (or a proxy's) failure whatever its code says: the call may or
            // may not have happened.
            SdkError::ServiceError(se) if se.raw().status().as_u16() >= 500 => {
                match code.as_deref().map(ErrorKind::from_code) {
                    Some(ErrorKind::Throttled) => ErrorKind::Throttled,
                    _ => ErrorKind::Service,
                }
            }
            SdkError::ServiceError(_) => code
                .as_deref()
                .map_or(ErrorKind::Other, ErrorKind::from_code),
            SdkError::TimeoutError(_) => ErrorKind::Network,
            SdkError::ResponseError(_) => ErrorKind::Service,
            // Credentials are resolved before the request is sent: a missing or broken
            // credential source fails here, and is not a network problem.
            SdkError::DispatchFailure(_) | SdkError::ConstructionFailure(_)
                if mentions_credentials(&message) =>
            {
                ErrorKind::Credentials
            }
            SdkError::DispatchFailure(_) => ErrorKind::Network,
            _ => ErrorKind::Other,
        };
        AwsError {
            kind,
            code,
            message,
        }
    }

    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

fn mentions_credentials(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("credential") || m.contains("identity")
}

/// The code and message of an SDK error, without the debug noise; for transport errors,
/// the chain of causes.
pub fn error_text<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: &SdkError<E, HttpResponse>,
) -> String {
    match e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            match (err.code(), err.message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_string(),
                _ => err.to_string(),
            }
        }
        SdkError::TimeoutError(_) => "request timed out".into(),
        other => {
            let mut causes = String::new();
            let mut src = std::error::Error::source(other);
            while let Some(inner) = src {
                causes.push_str(": ");
                causes.push_str(&inner.to_string());
                src = inner.source();
            }
            // Credentials are resolved before anything is sent: their failure is not a
            // network problem.
            let head = match other {
                SdkError::DispatchFailure(_) if mentions_credentials(&causes) => {
                    "no usable credentials".to_string()
                }
                SdkError::DispatchFailure(_) => "cannot reach the endpoint".to_string(),
                _ => other.to_string(),
            };
            head + &causes
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified() {
        assert_eq!(ErrorKind::from_code("Throttling"), ErrorKind::Throttled);
        assert_eq!(ErrorKind::from_code("NoSuchEntity"), ErrorKind::NotFound);
        assert_eq!(
            ErrorKind::from_code("AccessDenied"),
            ErrorKind::AccessDenied
        );
        assert_eq!(ErrorKind::from_code("DeleteConflict"), ErrorKind::Conflict);
        assert_eq!(
            ErrorKind::from_code("MalformedPolicyDocument"),
            ErrorKind::InvalidInput
        );
        assert_eq!(ErrorKind::from_code("ExpiredToken"), ErrorKind::Credentials);
        assert_eq!(ErrorKind::from_code("Whatever"), ErrorKind::Other);
    }

    #[test]
    fn service_errors_carry_code_kind_and_message() {
        use aws_sdk_iam::operation::get_role::GetRoleError;
        use aws_sdk_iam::types::error::NoSuchEntityException;
        use aws_smithy_runtime_api::http::StatusCode;
        use aws_smithy_types::body::SdkBody;
        let inner = GetRoleError::NoSuchEntityException(
            NoSuchEntityException::builder()
                .message("The role x cannot be found.")
                .meta(
                    aws_smithy_types::error::ErrorMetadata::builder()
                        .code("NoSuchEntity")
                        .message("The role x cannot be found.")
                        .build(),
                )
                .build(),
        );
        let raw = HttpResponse::new(StatusCode::try_from(404).unwrap(), SdkBody::empty());
        let e: SdkError<GetRoleError, HttpResponse> = SdkError::service_error(inner, raw);
        let a = AwsError::from_sdk(&e);
        assert_eq!(a.kind, ErrorKind::NotFound);
        assert!(a.is("NoSuchEntity"));
        assert_eq!(a.to_string(), "NoSuchEntity: The role x cannot be found.");
    }
}
