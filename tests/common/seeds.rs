//! The manifests of the tutorials in ../shared/seeds, as written (comments and typos included).

/// Seed 000: the nginx Deployment and the `my-nginx` NodePort Service.
pub const NGINX_DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  labels:
    app: nginx
spec:
  replicas: 3
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.14.2
        ports:
        - containerPort: 80
"#;

pub const MY_NGINX_SERVICE: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: my-nginx
  labels:
    run: my-nginx
spec:
  type: NodePort # Service 의 Type 을 명시하는 부분입니다.
  ports:
  - port: 80
    protocol: TCP
  selector: # 아래 label 을 가진 Pod 을 매핑하는 부분입니다.
    app: nginx 
"#;

/// Seed 004: the Spring Boot service, with its `nordPort` typo.
pub const SPRING_SERVICE: &str = r#"
apiVersion: v1 # Kubernetes API 버전. Service를 생성할 때 사용하는 API 버전.
kind: Service # 리소스 종류. 여기서는 Service를 생성

metadata: 
  name: spring-service # Service 이름. 클러스터 내에서 이 이름으로 Service를 식별

spec:
  type: NodePort # Service 유형. NodePort를 사용하면 외부에서 접근 가능
  selector:
    app: backend-app # Service와 연결될 파드를 선택하는 조건 / app: backend-app 레이블이 설정된 파드만 연결
  ports:
    - protocol: TCP # 통신 프로토콜. TCP 사용
      port: 8080 # Service가 클러스터 내부에서 사용할 포트 번호
      targetPort: 8080 # 연결된 파드에서 실제로 사용하는 포트 번호
      nordPort: 30000 # 클러스터 외부에서 이 포트 번호로 Service에 접근 가능
"#;

/// Seed 003: a ClusterIP Service asking for an address outside the service range.
pub const MY_SERVICE: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: my-service
spec:
  type: ClusterIP            # 1
  clusterIP: 10.0.10.10      # 2
  selector:                  # 3
    app: MyApp
  ports:                     # 4
  - protocol: TCP
    port: 80
    targetPort: 9376
"#;

/// Seed 003: the ClusterIP Service for `nginx-for-svc` pods.
pub const CLUSTERIP_SERVICE: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: clusterip-service
spec:
  type: ClusterIP
  selector:
    app: nginx-for-svc
  ports:
  - protocol: TCP
    port: 80
    targetPort: 80
"#;

/// Seed 002: `service-python`.
pub const SERVICE_PYTHON: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: service-python
spec:
  ports:
    - port: 3000
      protocol: TCP
      targetPort: 443
  selector:
    run: pod-python
  type: ClusterIP
"#;

/// Seed 001: the Ingress of an old tutorial, in a version Kubernetes no longer serves: three
/// paths, the first empty, and `rewrite-target: /` (the blog's inline `//` remarks explain the
/// manifest and are not part of it).
pub const OLD_INGRESS: &str = r#"
apiVersion: networking.k8s.io/v1beta1
kind: Ingress
metadata:
  name: ingress-nginx
  annotations:
    nginx.ingress.kubernetes.io/rewrite-target: /
spec:
  rules:
  - http:
      paths:
      - path:
        backend:
          serviceName: hname-svc-default
          servicePort: 80
      - path: /ip
        backend:
          serviceName: ip-svc
          servicePort: 80
      - path: /your-directory
        backend:
          serviceName: your-svc
          servicePort: 80
"#;
