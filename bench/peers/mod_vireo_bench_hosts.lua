-- mod_vireo_bench_hosts: a static s2s route table for the bench's federation pair,
-- `vireo_bench_hosts = { ["domain"] = { "ip", port } }`. Prosody 0.12 has no host table of
-- its own; this replaces net.resolvers.service.new, which mod_s2s calls for every outbound
-- stream, with a fixed address for the domains listed (the same plugin as
-- engine/prosody_test.go's mod_vireo_test_hosts). Domains not listed resolve as usual.
local service = require "net.resolvers.service";
local manual = require "net.resolvers.manual";
local hosts = module:get_option("vireo_bench_hosts", {});
local orig = service._vireo_orig or service.new;
service._vireo_orig = orig;
service.new = function (hostname, srv, conn_type, extra)
	local to = hosts[hostname];
	if not to then
		return orig(hostname, srv, conn_type, extra);
	end
	if srv ~= "xmpp-server" then -- no direct TLS (xmpps-server) in the table
		return manual.new({}, conn_type, extra);
	end
	return manual.new({ { conn_type or "tcp", to[1], to[2], extra } }, conn_type, extra);
end
function module.unload()
	service.new = orig;
end
