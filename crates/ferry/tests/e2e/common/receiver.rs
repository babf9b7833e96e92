//! A local HTTP receiver for notification and event deliveries.

/// A local HTTP receiver that answers 202 and keeps every request body.
pub struct Receiver {
    pub url: String,
    bodies: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let store = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let store = store.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    let mut out = stream;
                    loop {
                        let mut length = 0usize;
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        loop {
                            line.clear();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            let l = line.trim_end();
                            if l.is_empty() {
                                break;
                            }
                            if let Some((_, v)) = l
                                .split_once(':')
                                .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                            {
                                length = v.trim().parse().unwrap_or(0);
                            }
                        }
                        let mut body = vec![0; length];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        store
                            .lock()
                            .expect("lock")
                            .push(String::from_utf8_lossy(&body).into_owned());
                        let reply = "HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n";
                        if out.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Receiver { url, bodies }
    }

    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.bodies
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|b| serde_json::from_str(b).ok())
            .collect()
    }
}
