"""The IR graph's name and consumer indexes stay right through every edit a pass makes."""
from core.ir import Graph, Node


def chain_graph():
    nodes = [Node("x", "Input", []), Node("a", "Activation", ["x"]), Node("b", "Activation", ["a"]),
             Node("c", "Concatenate", ["a", "b"])]
    return Graph("net", nodes, input="x", output="c")


def consumers(graph, name):
    return sorted(n.name for n in graph.consumers(name))


def test_consumers_follow_in_place_input_edits():
    g = chain_graph()
    assert consumers(g, "a") == ["b", "c"]
    g.node("c").inputs[1] = "a"                       # c reads a twice: still one consumer
    assert consumers(g, "a") == ["b", "c"] and consumers(g, "b") == []
    g.node("c").inputs[0:1] = ["x", "b"]              # slice assignment, as a splice does
    assert g.node("c").inputs == ["x", "b", "a"]
    assert consumers(g, "x") == ["a", "c"] and consumers(g, "b") == ["c"]
    g.node("c").inputs = ["b"]
    assert consumers(g, "a") == ["b"] and consumers(g, "x") == ["a"]


def test_nodes_added_removed_and_renamed_are_indexed():
    g = chain_graph()
    d = Node("d", "Softmax", ["b"])
    g.nodes.insert(3, d)
    assert g.node("d") is d and consumers(g, "b") == ["c", "d"]
    g.nodes.remove(d)
    assert not g.has_node("d") and consumers(g, "b") == ["c"]
    g.node("b").name = "b2"
    assert g.node("b2").op == "Activation" and not g.has_node("b")
    assert g.unique_name("b") == "b" and g.unique_name("a") == "a_1"


def test_remove_and_insert_after_rewire_consumers():
    g = chain_graph()
    g.remove(g.node("b"))
    assert g.node("c").inputs == ["a", "a"] and consumers(g, "a") == ["c"]
    g.insert_after(g.node("x"), Node("r", "Resize", []))
    assert g.node("a").inputs == ["r"] and consumers(g, "x") == ["r"]
    assert [n.name for n in g.nodes] == ["x", "r", "a", "c"]


def test_a_node_given_to_a_new_graph_leaves_the_old_index():
    old = chain_graph()
    a = old.node("a")
    new = Graph("other", [Node("y", "Input", []), a], input="y", output="a")
    assert new.node("a") is a and not old.has_node("a")
    a.inputs = ["y"]
    assert consumers(new, "y") == ["a"] and consumers(old, "x") == []
