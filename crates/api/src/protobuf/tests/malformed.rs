//! Bodies that are wrong, cut short or from a newer release: errors, never panics.

use super::*;

#[test]
fn unknown_kind_is_refused_naming_the_kind() {
    let err = decode(&envelope("batch/v1", "Job", vec![])).unwrap_err();
    assert_eq!(
        err,
        ProtobufError::UnsupportedKind {
            api_version: "batch/v1".into(),
            kind: "Job".into()
        }
    );
    assert!(err.to_string().contains("batch/v1, Kind=Job"), "{err}");
}

#[test]
fn body_without_magic_is_refused() {
    assert_eq!(decode(b"{\"kind\":\"Pod\"}"), Err(ProtobufError::MissingMagic));
    assert_eq!(decode(b"k8s"), Err(ProtobufError::MissingMagic));
}

#[test]
fn envelope_without_type_meta_or_with_compression_is_refused() {
    assert_eq!(decode(b"k8s\0"), Err(ProtobufError::MissingTypeMeta));
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: s("v1"),
            kind: s("Pod"),
        }),
        raw: Some(vec![]),
        content_encoding: s("gzip"),
        content_type: s(""),
    };
    let body = [b"k8s\0".as_slice(), &unknown.encode_to_vec()].concat();
    assert_eq!(decode(&body), Err(ProtobufError::UnsupportedEncoding("gzip".into())));
}

#[test]
fn every_truncation_of_a_body_errors_or_decodes_and_never_panics() {
    let full = body("apps/v1", "Deployment", &kubectl_deployment(2));
    // Magic, the typeMeta field (tag, length, payload), the raw field, then contentEncoding and
    // contentType, both empty (two bytes each).
    let raw_start = 4 + 2 + usize::from(full[5]);
    let raw_end = full.len() - 4;
    for end in 0..full.len() {
        let result = decode(&full[..end]);
        if (raw_start + 1..raw_end).contains(&end) {
            // A cut raw field always claims more bytes than remain.
            assert!(
                matches!(result, Err(ProtobufError::Malformed { .. })),
                "prefix of {end} bytes: {result:?}"
            );
        }
    }
}

#[test]
fn garbage_after_the_magic_never_panics() {
    // A fixed linear congruential generator: deterministic noise, no dependency.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut byte = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u8
    };
    let valid = body("apps/v1", "Deployment", &kubectl_deployment(2));
    for round in 0..2000 {
        let mut body = valid.clone();
        // Flip a few bytes inside a valid body, so decoding gets deep before it meets them.
        for _ in 0..(1 + round % 4) {
            let at = 4 + usize::from(byte()) * usize::from(byte()) % (body.len() - 4);
            body[at] = byte();
        }
        let _ = decode(&body);
        let noise: Vec<u8> = b"k8s\0"
            .iter()
            .copied()
            .chain((0..round % 64).map(|_| byte()))
            .collect();
        let _ = decode(&noise);
    }
}

#[test]
fn invalid_utf8_error_names_the_json_path_and_message() {
    let mut deployment = kubectl_deployment(2);
    let spec = deployment
        .spec
        .as_mut()
        .unwrap()
        .template
        .as_mut()
        .unwrap()
        .spec
        .as_mut()
        .unwrap();
    spec.containers[0].image = s("nginx:X");
    let mut body = body("apps/v1", "Deployment", &deployment);
    let at = body.windows(7).position(|w| w == b"nginx:X").unwrap() + 6;
    body[at] = 0xff;
    let err = decode(&body).unwrap_err();
    let ProtobufError::Malformed { path, message, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(path, "spec.template.spec.containers[0].image");
    assert_eq!(*message, Some("core.v1.Container"));
    assert!(err.to_string().contains("UTF-8"), "{err}");
}

#[test]
fn unknown_field_numbers_are_skipped() {
    let mut raw = kubectl_deployment(2).encode_to_vec();
    // Field 99 as a varint and field 100 as bytes: fields of a newer release.
    raw.extend([0x98, 0x06, 0x07, 0xa2, 0x06, 0x02, b'h', b'i']);
    let got = decode(&envelope("apps/v1", "Deployment", raw)).unwrap();
    assert_eq!(got["spec"]["replicas"], json!(2));
}

#[test]
fn repeated_occurrences_of_a_message_field_merge() {
    let first = apps::Deployment {
        spec: Some(apps::DeploymentSpec {
            replicas: Some(1),
            ..Default::default()
        }),
        ..Default::default()
    };
    let second = apps::Deployment {
        spec: Some(apps::DeploymentSpec {
            revision_history_limit: Some(3),
            ..Default::default()
        }),
        ..Default::default()
    };
    let raw = [first.encode_to_vec(), second.encode_to_vec()].concat();
    let got = decode(&envelope("apps/v1", "Deployment", raw)).unwrap();
    assert_eq!(got["spec"], json!({"replicas": 1, "revisionHistoryLimit": 3}));
}

#[test]
fn packed_repeated_integers_decode_like_unpacked_ones() {
    // PodSecurityContext.supplementalGroups (field 4, repeated int64): packed [1, 300], then
    // one unpacked element 7.
    let raw = [0x22, 0x03, 0x01, 0xac, 0x02, 0x20, 0x07];
    let context = [&[0x72, raw.len() as u8][..], &raw].concat(); // PodSpec.securityContext = 14
    let pod = [&[0x12, context.len() as u8][..], &context].concat(); // Pod.spec = 2
    let got = decode(&envelope("v1", "Pod", pod)).unwrap();
    assert_eq!(got["spec"]["securityContext"]["supplementalGroups"], json!([1, 300, 7]));
}

#[test]
fn wrong_wire_type_for_a_known_field_is_malformed() {
    // DeploymentSpec.replicas (field 1) sent as a string.
    let raw = [0x12, 0x03, 0x0a, 0x01, b'x'];
    let err = decode(&envelope("apps/v1", "Deployment", raw.to_vec())).unwrap_err();
    assert!(err.to_string().contains("at spec.replicas"), "{err}");
    assert!(err.to_string().contains("expected a varint"), "{err}");
}
