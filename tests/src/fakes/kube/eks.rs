//! EKS mode: HTTPS with a CA of its own, and every request authenticated by an EKS token
//! ([`crate::eks_auth`]).

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::Router;

use super::{handle, status, FakeKube};
use crate::eks_auth::EksAuthenticator;

impl FakeKube {
    /// Serves as EKS cluster `cluster`'s API would: HTTPS with a certificate from a CA of
    /// its own ([`FakeKube::ca_data`]), and every request authenticated by an EKS token
    /// checked as aws-iam-authenticator checks it, STS being the one `sdk` names (moto).
    /// The keys STS knows are `sdk`'s credentials (see [`crate::eks_auth`]).
    pub async fn start_eks(cluster: &str, sdk: &aws_types::SdkConfig) -> FakeKube {
        use aws_credential_types::provider::ProvideCredentials;
        let endpoint = sdk
            .endpoint_url()
            .expect("an SDK config naming moto's endpoint");
        let credentials = sdk
            .credentials_provider()
            .expect("credentials")
            .provide_credentials()
            .await
            .expect("credentials");
        let auth = Arc::new(EksAuthenticator::new(cluster, endpoint, &[credentials]));
        let certs = crate::eks_auth::serving_certs(&format!("fake-kube-ca-{cluster}"));
        let tls = axum_server::tls_rustls::RustlsConfig::from_pem(
            certs.cert_pem.into_bytes(),
            certs.key_pem.into_bytes(),
        )
        .await
        .expect("TLS configuration");
        let store = Self::new_store();
        let app = Router::new()
            .fallback(handle)
            .with_state(store.clone())
            .layer(axum::middleware::from_fn_with_state(
                auth.clone(),
                authenticate,
            ));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fake kube");
        let addr = listener.local_addr().expect("fake kube address");
        let server = axum_server::tls_rustls::from_tcp_rustls(listener, tls).expect("TLS server");
        tokio::spawn(async move {
            let _ = server.serve(app.into_make_service()).await;
        });
        FakeKube {
            url: format!("https://{addr}"),
            store,
            eks: Some((auth, certs.ca_pem)),
        }
        .seeded()
    }

    fn authenticator(&self) -> &EksAuthenticator {
        &self.eks.as_ref().expect("FakeKube::start_eks").0
    }

    /// EKS mode: the CA as DescribeCluster's `certificateAuthority.data` gives it (base64
    /// of the PEM).
    pub fn ca_data(&self) -> String {
        crate::eks_auth::ca_data(&self.eks.as_ref().expect("FakeKube::start_eks").1)
    }

    /// EKS mode: the ARN of each caller STS vouched for, once per token verified.
    pub fn authenticated_arns(&self) -> Vec<String> {
        self.authenticator().authenticated_arns()
    }

    /// EKS mode: why each refused request got its 401, in order.
    pub fn rejections(&self) -> Vec<String> {
        self.authenticator().rejections()
    }
}

/// EKS mode: a request goes on only with a token STS vouches for; else 401, as the API
/// server answers (the reason is kept for [`FakeKube::rejections`], not told the client).
async fn authenticate(
    State(auth): State<Arc<EksAuthenticator>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let header = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match auth.authenticate(header.as_deref()).await {
        Ok(_) => next.run(request).await,
        Err(_) => status(401, "Unauthorized", "Unauthorized".into()),
    }
}
