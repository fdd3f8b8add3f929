//
//  TinyForkStyleBuilder.swift
//
//  A small network written by hand in the style of the Forge fork's builders
//  (Forge/Forge/Networks/*Builder.swift), used by the reference device tests.
//  Weights are written by the tests at run time.
//

import Foundation
//import Forge
import MetalPerformanceShaders

open class TinyForkStyleBuilder : NetworkBuilder {

private(set) public var model: Model
private(set) public var device: MTLDevice
private(set) public var name = "tiny_fork"

public required init(device: MTLDevice) {
  self.device = device

let relu = MPSCNNNeuronReLU(device: device, a: 0)
let leaky = MPSCNNNeuronReLU(device: device, a: 0.10000)
let relun6 = MPSCNNNeuronReLUN(device: device, a: 0.0, b: 6.0)
let input = Input()
let swap_channels = Custom(TransposeChannelsKernel(device: device, featureChannels: 3, permute: [2,1,0]), name: "rgb2bgr")
let subtract_mean = Custom(SubtractMeanColor(device: device, red: 103.939, green: 116.779, blue: 123.68, scale: 255.0), name: "subtract_mean")
let input_scale = Activation(MPSCNNNeuronLinear(device: device, a: 0.0078125, b: 0), name: "input_scale")
let input_1 = input --> Resize(width: 32, height: 32) --> swap_channels --> subtract_mean --> input_scale
let conv1 = Convolution(kernel: (3, 3), channels: 16, stride: (2, 2), activation: relu, name: "conv1")
let pool1 = MaxPooling(kernel: (3, 3), stride: (1, 1), padding: .same, name: "pool1")
let branch_a = Convolution(kernel: (1, 1), channels: 8, activation: leaky, name: "branch_a")
let branch_b1 = Convolution(kernel: (1, 1), channels: 8, activation: relu, name: "branch_b1")
let branch_b2 = Convolution(kernel: (3, 1), channels: 12, name: "branch_b2")
let branch_c = AveragePooling(kernel: (3, 3), stride: (1, 1), padding: .same, name: "branch_c")
let mixed_up = Convolution(kernel: (1, 1), channels: 16, name: "mixed_up")
let block_ac = Activation(relu, name: "block_ac")
let pad = ZeroPadding(tblr_padding: (0, 1, 0, 1), name: "pad")
let dw = DepthwiseConvolution(kernel: (3, 3), stride: (2, 2), useBias: false, name: "dw")
let dw_relu = Activation(relun6, name: "dw_relu")
let pw = PointwiseConvolution(channels: 24, name: "pw")
let pool2 = AveragePooling(kernel: (2, 2), stride: (2, 2), name: "pool2")
let fc = Dense(neurons: 10, name: "fc")

do {
let conv1 = input_1 --> conv1 --> pool1
let branch_a = conv1 --> branch_a
let branch_b = conv1 --> branch_b1
         --> branch_b2
let branch_c = conv1 --> branch_c
let mixed = Concatenate([branch_a, branch_b, branch_c], name: "mixed")
let block = Collect([conv1 --> Activation(MPSCNNNeuronLinear(device: device, a: 1, b: 0), name: "shortcut"), mixed --> mixed_up --> Activation(MPSCNNNeuronLinear(device: device, a: 0.17, b: 0), name: "scale_block")], name: "for_block") --> Add(name: "block")
let block_ac = block --> block_ac
let fc = block_ac --> pad --> dw --> dw_relu --> pw --> pool2 --> fc
let output = fc --> Softmax()
model = Model(input: input, output: output)
}
} // init

public func compile(inflightBuffers: Int) -> Bool {
return model.compile(device: device, inflightBuffers: inflightBuffers) {
  name, count, type in ParameterLoaderBundle(name: name,
  count: count,
  prefix: "tiny_fork-",
  suffix: type == .weights ? ".weights" : ".biases",
  ext: "bin")
}
} // func
} // class
