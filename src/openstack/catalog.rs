//! Keystone's service catalog, and the endpoint of a service chosen from it
//! by type, name, region and interface.

/// One endpoint of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Its region, e.g. `RegionOne`.
    pub region: String,
    /// `public`, `internal` or `admin`.
    pub interface: String,
    /// Its URL.
    pub url: String,
}

/// One service of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Its type, e.g. `compute`.
    pub kind: String,
    /// Its name, e.g. `nova`.
    pub name: String,
    /// Its endpoints.
    pub endpoints: Vec<Endpoint>,
}

/// The services a token may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    /// The services, in Keystone's order.
    pub services: Vec<Service>,
}

impl Catalog {
    /// The URL of the service of type `kind` (named `name`, when given) in
    /// `region` on `interface`, without a trailing `/`. `Ok(None)` when the
    /// catalog has no service of that type; an error naming what there is
    /// when the choice is ambiguous or the service has no such endpoint.
    pub fn endpoint(
        &self,
        kind: &str,
        name: Option<&str>,
        region: &str,
        interface: &str,
    ) -> Result<Option<String>, String> {
        let of_kind: Vec<&Service> = self.services.iter().filter(|s| s.kind == kind).collect();
        if of_kind.is_empty() {
            return Ok(None);
        }
        let chosen: Vec<&Service> = match name {
            Some(name) => of_kind.iter().copied().filter(|s| s.name == name).collect(),
            None => of_kind.clone(),
        };
        let names: Vec<&str> = of_kind.iter().map(|s| s.name.as_str()).collect();
        let service = match chosen[..] {
            [one] => one,
            [] => {
                return Err(format!(
                    "the catalog has no {kind} service named {:?} (it has {names:?})",
                    name.unwrap_or_default()
                ));
            }
            _ => {
                return Err(format!(
                    "the catalog has several {kind} services ({names:?}): set \
                     {kind}_service_name to choose one"
                ));
            }
        };
        match service
            .endpoints
            .iter()
            .find(|e| e.region == region && e.interface == interface)
        {
            Some(endpoint) => Ok(Some(endpoint.url.trim_end_matches('/').to_owned())),
            None => {
                let there: Vec<String> = service
                    .endpoints
                    .iter()
                    .map(|e| format!("{} {}", e.region, e.interface))
                    .collect();
                Err(format!(
                    "the {kind} service {:?} has no {interface} endpoint in region {region} \
                     (it has {there:?})",
                    service.name
                ))
            }
        }
    }

    /// The types of the services, for messages.
    pub fn kinds(&self) -> Vec<&str> {
        self.services.iter().map(|s| s.kind.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(kind: &str, name: &str, endpoints: &[(&str, &str, &str)]) -> Service {
        Service {
            kind: kind.into(),
            name: name.into(),
            endpoints: endpoints
                .iter()
                .map(|(region, interface, url)| Endpoint {
                    region: (*region).into(),
                    interface: (*interface).into(),
                    url: (*url).into(),
                })
                .collect(),
        }
    }

    #[test]
    fn endpoints_are_chosen_by_type_name_region_and_interface() {
        let catalog = Catalog {
            services: vec![
                service(
                    "compute",
                    "nova",
                    &[
                        ("RegionOne", "public", "https://nova.one/v2.1/"),
                        ("RegionOne", "internal", "http://nova.internal/v2.1"),
                        ("RegionTwo", "public", "https://nova.two/v2.1"),
                    ],
                ),
                service(
                    "compute",
                    "behaviour",
                    &[("RegionOne", "public", "http://b")],
                ),
                service(
                    "network",
                    "neutron",
                    &[("RegionOne", "public", "https://neutron.one")],
                ),
            ],
        };
        let compute =
            |name, region, interface| catalog.endpoint("compute", name, region, interface);
        assert_eq!(
            compute(Some("nova"), "RegionOne", "public"),
            Ok(Some("https://nova.one/v2.1".into()))
        );
        assert_eq!(
            compute(Some("nova"), "RegionOne", "internal"),
            Ok(Some("http://nova.internal/v2.1".into()))
        );
        assert_eq!(
            compute(Some("nova"), "RegionTwo", "public"),
            Ok(Some("https://nova.two/v2.1".into()))
        );
        let error = compute(None, "RegionOne", "public").unwrap_err();
        assert!(
            error.contains("several compute services ([\"nova\", \"behaviour\"])"),
            "{error}"
        );
        assert!(error.contains("compute_service_name"), "{error}");
        let error = compute(Some("nova"), "RegionThree", "public").unwrap_err();
        assert!(
            error.contains("no public endpoint in region RegionThree"),
            "{error}"
        );
        assert!(
            compute(Some("glance"), "RegionOne", "public")
                .unwrap_err()
                .contains("no compute service named")
        );
        assert_eq!(
            catalog.endpoint("network", None, "RegionOne", "public"),
            Ok(Some("https://neutron.one".into()))
        );
        assert_eq!(
            catalog.endpoint("volume", None, "RegionOne", "public"),
            Ok(None)
        );
        assert_eq!(catalog.kinds(), ["compute", "compute", "network"]);
    }
}
