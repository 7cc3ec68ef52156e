# shellcheck shell=bash
# A throwaway certificate authority for the federation interop test
# (scripts/interop/federation.sh): sourced, never run. The name does not end
# in .sh on purpose: .ci/run runs every scripts/interop/*.sh.
#
#   . scripts/interop/federation_ca.bash
#   ca_make DIR "Name of the CA"          # DIR/ca.crt, DIR/ca.key
#   ca_issue DIR OUTDIR DOMAIN            # OUTDIR/DOMAIN.crt, .key, .pem (crt+key)
#
# Keys are RSA 2048 (every peer's TLS stack takes them); certificates are
# valid for one day. A leaf has subjectAltName DNS:DOMAIN and DNS:*.DOMAIN
# and the extended key usages serverAuth and clientAuth: a server presents
# the same certificate on incoming and on outgoing s2s streams, where the
# peer checks it as a client certificate (SASL EXTERNAL, XEP-0178).

ca_make() {
	local dir=$1 name=$2
	mkdir -p "$dir"
	openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 1 \
		-keyout "$dir/ca.key" -out "$dir/ca.crt" -subj "/O=xmppd interop/CN=$name" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-addext "subjectKeyIdentifier=hash" 2>/dev/null ||
		return 1
	chmod 600 "$dir/ca.key"
}

ca_issue() {
	local dir=$1 out=$2 domain=$3
	mkdir -p "$out"
	local ext="$out/$domain.ext"
	cat >"$ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:$domain,DNS:*.$domain
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
	openssl req -new -newkey rsa:2048 -nodes -sha256 \
		-keyout "$out/$domain.key" -out "$out/$domain.csr" -subj "/CN=$domain" 2>/dev/null &&
		openssl x509 -req -in "$out/$domain.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
			-set_serial "0x$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')" -days 1 -sha256 \
			-extfile "$ext" -out "$out/$domain.crt" 2>/dev/null ||
		return 1
	rm -f "$out/$domain.csr" "$ext"
	chmod 600 "$out/$domain.key"
	cat "$out/$domain.crt" "$out/$domain.key" >"$out/$domain.pem"
	chmod 600 "$out/$domain.pem"
	openssl verify -CAfile "$dir/ca.crt" -purpose sslserver "$out/$domain.crt" >/dev/null &&
		openssl verify -CAfile "$dir/ca.crt" -purpose sslclient "$out/$domain.crt" >/dev/null
}
