# Extra runtime rules of the example federation (docs/law.md § Rego), evaluated by the agent
# after the treaties' and the policy's own constraints. A rule can only add denials.
# spec_version: 1.0
# version: 1

package treaty

# One order asks for at most 100 GPU-hours: larger work is split into several orders, so no
# single order can hold a large share of a treaty's day.
deny contains {"code": "rego-order-too-large", "message": msg} if {
	input.order.gpu_milli_hours > 100000
	msg := sprintf("the order asks %d milli-GPU-hours; one order may ask at most 100000", [input.order.gpu_milli_hours])
}
