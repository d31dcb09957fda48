//! The EC2 environ against moto: statuses, addresses, interfaces, partial
//! answers and batching, with instances made through the SDK itself.

use aws_sdk_ec2::types::InstanceType;
use muster::error::{ErrorKind, PollError};
use muster::provider::{
    AddressScope, Environ, InstanceId, InstanceStatus, NetworkInterface, check_instances,
};

use crate::moto::Moto;
use crate::support::environ;

/// An id in EC2's format that moto never made.
const UNKNOWN: &str = "i-0123456789abcdef0";

/// Runs `count` instances in moto, answering their ids.
pub async fn run_instances(client: &aws_sdk_ec2::Client, count: i32) -> Vec<String> {
    let image = client
        .describe_images()
        .send()
        .await
        .expect("moto lists its images")
        .images()
        .first()
        .and_then(|i| i.image_id())
        .expect("moto has an image")
        .to_owned();
    client
        .run_instances()
        .image_id(image)
        .instance_type(InstanceType::T2Micro)
        .min_count(count)
        .max_count(count)
        .send()
        .await
        .expect("moto runs instances")
        .instances()
        .iter()
        .map(|i| i.instance_id().expect("an instance id").to_owned())
        .collect()
}

fn ids(ids: &[&str]) -> Vec<InstanceId> {
    ids.iter().map(|id| InstanceId::from(*id)).collect()
}

fn values(interface: &NetworkInterface) -> Vec<(String, AddressScope)> {
    interface
        .addresses
        .iter()
        .map(|a| (a.value.clone(), a.scope))
        .collect()
}

#[cfg_attr(missing_moto, ignore = "needs moto_server")]
#[tokio::test]
async fn running_instances_with_their_interfaces_in_device_order() {
    let moto = Moto::start();
    let client = moto.client();
    let running = run_instances(&client, 2).await;
    let (first, second) = (running[0].as_str(), running[1].as_str());

    // The first instance gets two more interfaces, attached out of order,
    // and a second private address on its primary interface.
    let described = client
        .describe_instances()
        .instance_ids(first)
        .send()
        .await
        .unwrap();
    let instance = &described.reservations()[0].instances()[0];
    let subnet = instance.subnet_id().unwrap().to_owned();
    let private_ip = instance.private_ip_address().unwrap().to_owned();
    let public_ip = instance.public_ip_address().unwrap().to_owned();
    let primary_eni = instance.network_interfaces()[0].clone();
    client
        .assign_private_ip_addresses()
        .network_interface_id(primary_eni.network_interface_id().unwrap())
        .secondary_private_ip_address_count(1)
        .send()
        .await
        .unwrap();
    let mut extra = Vec::new();
    for device_index in [2, 1] {
        let eni = client
            .create_network_interface()
            .subnet_id(&subnet)
            .send()
            .await
            .unwrap()
            .network_interface()
            .unwrap()
            .clone();
        client
            .attach_network_interface()
            .network_interface_id(eni.network_interface_id().unwrap())
            .instance_id(first)
            .device_index(device_index)
            .send()
            .await
            .unwrap();
        extra.push((device_index, eni));
    }

    let (environ, _dir) = environ(&moto.url()).await;
    let found = environ.instances(&ids(&[first, second])).await.unwrap();
    check_instances(&found).unwrap();
    for (instance, id) in found.iter().zip([first, second]) {
        let instance = instance.as_ref().unwrap();
        assert_eq!(instance.id.as_str(), id);
        assert_eq!(instance.status.status, InstanceStatus::Running);
        assert_eq!(instance.status.message, "");
    }
    let plain = &found[0].as_ref().unwrap().addresses;
    assert_eq!(plain[0].value, private_ip);
    assert_eq!(plain[0].scope, AddressScope::CloudLocal);
    assert_eq!(plain[1].value, public_ip);
    assert_eq!(plain[1].scope, AddressScope::Public);

    let lists = environ
        .network_interfaces(&ids(&[first, second]))
        .await
        .unwrap();
    assert_eq!(lists.len(), 2);
    let interfaces = &lists[0];
    let indices: Vec<u32> = interfaces.iter().map(|i| i.device_index).collect();
    assert_eq!(indices, [0, 1, 2]);

    let primary = &interfaces[0];
    assert_eq!(
        primary.provider_id,
        primary_eni.network_interface_id().unwrap()
    );
    assert_eq!(primary.mac_address, primary_eni.mac_address().unwrap());
    assert_eq!(primary.subnet_id, subnet);
    let addresses = values(primary);
    assert_eq!(addresses.len(), 3, "{addresses:?}");
    assert_eq!(addresses[0], (private_ip.clone(), AddressScope::CloudLocal));
    assert_eq!(addresses[1].1, AddressScope::CloudLocal);
    assert_ne!(addresses[1].0, private_ip);
    assert_eq!(addresses[2], (public_ip.clone(), AddressScope::Public));

    for (device_index, eni) in &extra {
        let interface = &interfaces[*device_index as usize];
        assert_eq!(interface.provider_id, eni.network_interface_id().unwrap());
        assert_eq!(interface.mac_address, eni.mac_address().unwrap());
        assert_eq!(interface.subnet_id, subnet);
        assert_eq!(
            values(interface),
            [(
                eni.private_ip_address().unwrap().to_owned(),
                AddressScope::CloudLocal
            )]
        );
    }

    assert_eq!(lists[1].len(), 1);
    assert_eq!(lists[1][0].device_index, 0);
    assert_eq!(values(&lists[1][0])[0].1, AddressScope::CloudLocal);
    assert_eq!(values(&lists[1][0])[1].1, AddressScope::Public);
}

#[cfg_attr(missing_moto, ignore = "needs moto_server")]
#[tokio::test]
async fn stopped_terminated_and_unknown_instances() {
    let moto = Moto::start();
    let client = moto.client();
    let made = run_instances(&client, 3).await;
    let (running, stopped, terminated) = (made[0].as_str(), made[1].as_str(), made[2].as_str());
    client
        .stop_instances()
        .instance_ids(stopped)
        .send()
        .await
        .unwrap();
    client
        .terminate_instances()
        .instance_ids(terminated)
        .send()
        .await
        .unwrap();

    let (environ, _dir) = environ(&moto.url()).await;
    let asked = ids(&[running, UNKNOWN, stopped, terminated]);
    let found = environ.instances(&asked).await.unwrap();
    assert_eq!(found.len(), 4);
    let status = |at: usize| found[at].as_ref().map(|i| i.status.clone());
    assert_eq!(status(0).unwrap().status, InstanceStatus::Running);
    assert!(found[1].is_none(), "an unknown id is missing");
    let stopped_status = status(2).unwrap();
    assert_eq!(stopped_status.status, InstanceStatus::Stopped);
    assert_eq!(
        stopped_status.message,
        "Client.UserInitiatedShutdown: User initiated shutdown"
    );
    assert!(found[3].is_none(), "a terminated instance is missing");
    let partial = check_instances(&found).unwrap_err();
    assert!(matches!(
        partial,
        PollError::PartialInstances {
            missing: 2,
            asked: 4
        }
    ));

    // Interfaces are asked for the known instances; an unknown id gets none.
    let lists = environ
        .network_interfaces(&ids(&[running, stopped, UNKNOWN]))
        .await
        .unwrap();
    assert_eq!(lists[0].len(), 1);
    assert_eq!(lists[1].len(), 1);
    assert!(
        lists[1][0]
            .addresses
            .iter()
            .all(|a| a.scope == AddressScope::CloudLocal)
    );
    assert!(lists[2].is_empty());
}

#[cfg_attr(missing_moto, ignore = "needs moto_server")]
#[tokio::test]
async fn a_batch_of_unknown_ids_is_no_instances() {
    let moto = Moto::start();
    run_instances(&moto.client(), 1).await;
    let (environ, _dir) = environ(&moto.url()).await;

    let error = environ
        .instances(&ids(&[UNKNOWN, "i-00000000000000001", "not-an-id"]))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NoInstances);
    let lists = environ.network_interfaces(&ids(&[UNKNOWN])).await.unwrap();
    assert_eq!(lists, [Vec::<NetworkInterface>::new()]);
    assert!(environ.instances(&[]).await.unwrap().is_empty());
}

#[cfg_attr(missing_moto, ignore = "needs moto_server")]
#[tokio::test]
async fn a_batch_of_a_hundred_ids_is_one_call() {
    let mut moto = Moto::start();
    let client = moto.client();
    let mut made = run_instances(&client, 100).await;
    made.extend(run_instances(&client, 50).await);
    let (environ, _dir) = environ(&moto.url()).await;
    let hundred: Vec<InstanceId> = made[..100].iter().map(|id| id.as_str().into()).collect();
    moto.calls_since_last_count();

    let found = environ.instances(&hundred).await.unwrap();
    assert!(found.iter().all(Option::is_some));
    assert_eq!(moto.calls_since_last_count(), 1);
    let lists = environ.network_interfaces(&hundred).await.unwrap();
    assert!(lists.iter().all(|l| l.len() == 1));
    assert_eq!(moto.calls_since_last_count(), 1);

    // More than one call's worth is split, and still answered in order.
    let all: Vec<InstanceId> = made.iter().map(|id| id.as_str().into()).collect();
    let found = environ.instances(&all).await.unwrap();
    let answered: Vec<&str> = found
        .iter()
        .map(|i| i.as_ref().unwrap().id.as_str())
        .collect();
    assert_eq!(
        answered,
        made.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(moto.calls_since_last_count(), 2);
}
